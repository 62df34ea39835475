import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { verifyReceipt } from '../../shared/evidence/verify.js';
import { testDatabase } from '../helpers/database.js';
import { eventChain } from '../helpers/evidence.js';
import { fetchRetrying503, startLetterPath } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { unzip } from '../helpers/zip.js';
import { opensslDecrypt } from '../services/storage/fixtures.js';
import { multipart, PDF } from '../services/ingestion/fixtures.js';

t.test('one letter end to end, services as processes: seed, send, pull + openssl decrypt, ack, OPENED, receipts verified and acknowledged', async (t) => {
  const { url, db } = await testDatabase(t);
  const dataDir = testDataDir(t);
  const env = { DATABASE_URL: url, DATA_DIR: dataDir, QUEUE_PREFIX: 'e2e_flow', LOG_LEVEL: 'warn' };

  const { ingestion, storage, I, S } = await startLetterPath(t, env);

  const sender = (await db.kysely.selectFrom('senders').select('orgnr').where('status', '=', 'active').orderBy('orgnr').limit(1).executeTakeFirstOrThrow()).orgnr;
  const senderToken = await issueDevToken(dataDir, { org: sender, scope: `${SCOPES.send} ${SCOPES.lookupDigitalPost}`, audience: 'postbud' });
  const asSender = { authorization: `Bearer ${senderToken}` };
  const examples = JSON.parse(readFileSync(path.join(dataDir, 'seed-persons.json'), 'utf8')) as Record<string, string[]>;

  // 1. Capabilities of a person with a mailbox.
  const personId = examples.mailbox![0]!;
  const caps = (await (await fetch(`${I}/v1/capabilities/${personId}`, { headers: asSender })).json()) as { digital: { possible: boolean; provider: { orgnr: string } } };
  t.equal(caps.digital.possible, true);
  const provider = caps.digital.provider.orgnr;

  // 2. Send.
  const pdf = PDF(200_000);
  const message = {
    recipient: { personId },
    title: 'Vedtak om bostøtte',
    language: 'nb',
    securityLevel: 4,
    openReceipt: true,
    senderReference: 'e2e-1',
    documents: [
      { name: 'vedtak.pdf', mime: 'application/pdf', main: true },
      { name: 'info.txt', mime: 'text/plain' },
    ],
  };
  const body = multipart(message, [
    { name: 'vedtak.pdf', content: pdf },
    { name: 'info.txt', content: Buffer.from('Les vedtaket nøye.\n') },
  ]);
  const sent = await fetchRetrying503(`${I}/v1/messages`, { method: 'POST', headers: { ...asSender, 'content-type': body.contentType, 'idempotency-key': 'e2e-key-1' }, body: body.payload });
  const accepted = (await sent.json()) as { id: string; route: string; provider: { orgnr: string } };
  t.equal(sent.status, 201, JSON.stringify(accepted));
  t.match(accepted, { route: 'DIGITAL', provider: { orgnr: provider } });

  // 3. The provider pulls, downloads the CMS and decrypts it with openssl.
  const providerToken = await issueDevToken(dataDir, { org: provider, scope: SCOPES.provider, audience: 'postbud' });
  const asProvider = { authorization: `Bearer ${providerToken}` };
  const list = (await (await fetch(`${S}/v1/deliveries?limit=100`, { headers: asProvider })).json()) as {
    deliveries: { id: string; messageId: string; fingerprint: string; mailboxAddress: string; routing: string }[];
  };
  const delivery = list.deliveries.find((d) => d.messageId === accepted.id);
  t.ok(delivery, 'the delivery is offered to the provider');
  const pkg = await fetch(`${S}/v1/deliveries/${delivery!.id}/package`, { headers: asProvider });
  t.equal(pkg.status, 200);
  const cms = Buffer.from(await pkg.arrayBuffer());
  const credentials = path.join(dataDir, 'providers', provider);
  const zip = await opensslDecrypt(t, cms, { certDer: Buffer.alloc(0), certPem: readFileSync(path.join(credentials, 'cert.pem'), 'utf8'), keyPem: readFileSync(path.join(credentials, 'key.pem'), 'utf8') });
  const entries = await unzip(zip);
  t.equal(entries.get('mimetype')?.toString(), 'application/vnd.etsi.asic-e+zip');
  t.ok(entries.get('vedtak.pdf')?.equals(pdf), 'the main document, byte for byte');
  t.equal(entries.get('info.txt')?.toString(), 'Les vedtaket nøye.\n');
  const manifest = JSON.parse(entries.get('manifest.json')!.toString()) as { messageId: string; title: string; documents: { name: string }[] };
  t.match(manifest, { messageId: accepted.id, title: 'Vedtak om bostøtte' });
  t.same(manifest.documents.map((d) => d.name), ['vedtak.pdf', 'info.txt']);
  const jwks = (await (await fetch(`${I}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  const [h, , s] = entries.get('META-INF/manifest.jws')!.toString().split('.');
  await compactVerify(`${h}.${entries.get('manifest.json')!.toString('base64url')}.${s}`, createLocalJWKSet(jwks));
  t.pass('the manifest signature verifies against the JWKS');
  const routing = JSON.parse(Buffer.from((await compactVerify(delivery!.routing, createLocalJWKSet(jwks))).payload).toString()) as Record<string, unknown>;
  t.match(routing, { deliveryId: delivery!.id, messageId: accepted.id, route: 'DIGITAL', providerOrgnr: provider, mailboxAddress: delivery!.mailboxAddress });
  t.equal(routing.manifestSha256, createHash('sha256').update(entries.get('manifest.json')!).digest('hex'), 'the signed routing names this package\'s manifest');

  // 4. Ack, then OPENED.
  const ack = await fetch(`${S}/v1/deliveries/${delivery!.id}/ack`, { method: 'POST', headers: asProvider });
  t.equal(ack.status, 200);
  const opened = await fetch(`${S}/v1/deliveries/${delivery!.id}/events`, {
    method: 'POST',
    headers: { ...asProvider, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 }),
  });
  t.equal(opened.status, 200, await opened.clone().text());

  // 5. The sender pulls DELIVERED and OPENED, verifies them against the JWKS and the timeline, acks them.
  const pulled = (await (await fetch(`${I}/v1/receipts?limit=100`, { headers: asSender })).json()) as { receipts: { id: string; type: string; messageId: string; jws: string }[] };
  const mine = pulled.receipts.filter((r) => r.messageId === accepted.id);
  t.same(mine.map((r) => r.type), ['DELIVERED', 'OPENED']);
  const status = (await (await fetch(`${I}/v1/messages/${accepted.id}`, { headers: asSender })).json()) as {
    status: string;
    eFormidlingStatus: string;
    timeline: { seq: number; type: string; at: string; hash: string }[];
  };
  for (const r of mine) {
    const events = await eventChain(db.kysely, accepted.id);
    const v = await verifyReceipt(r.jws, { jwks, events });
    t.ok(v.valid, `${r.type} receipt: signature and event chain verify ${v.problems.join('; ')}`);
    t.ok(status.timeline.some((e) => e.seq === v.receipt?.event.seq && e.hash === v.receipt.event.hash), `${r.type} is on the timeline with the signed hash`);
  }
  const acked = await fetch(`${I}/v1/receipts/ack`, { method: 'POST', headers: { ...asSender, 'content-type': 'application/json' }, body: JSON.stringify({ ids: mine.map((r) => r.id) }) });
  t.same(await acked.json(), { acknowledged: 2 });
  const after = (await (await fetch(`${I}/v1/receipts`, { headers: asSender })).json()) as { receipts: { messageId: string }[] };
  t.notOk(after.receipts.some((r) => r.messageId === accepted.id), 'nothing left to pull');

  t.match(status, { status: 'OPENED', eFormidlingStatus: 'LEST' });
  t.same(status.timeline.map((e) => e.type), ['SEALED', 'DELIVERED', 'OPENED'], 'the timeline is complete');
  t.ok(status.timeline.every((e, i) => i === 0 || e.at >= status.timeline[i - 1]!.at), 'in time order');

  // Logs carry neither the personId nor the title.
  const logs = ingestion.output() + storage.output();
  t.notOk(logs.includes(personId), 'no personId in the logs');
  t.notOk(logs.includes('bostøtte'), 'no title in the logs');

  ingestion.child.kill('SIGTERM');
  storage.child.kill('SIGTERM');
  t.equal((await ingestion.exited).code, 0);
  t.equal((await storage.exited).code, 0);
});
