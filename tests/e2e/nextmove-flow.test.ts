import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import t from 'tap';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { verifyReceipt } from '../../shared/evidence/verify.js';
import { testDatabase } from '../helpers/database.js';
import { eventChain } from '../helpers/evidence.js';
import { startLetterPath } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { unzip } from '../helpers/zip.js';
import { waitFor } from '../helpers/wait.js';
import { opensslDecrypt } from '../services/storage/fixtures.js';
import { PDF } from '../services/ingestion/fixtures.js';
import { DOCS, substitute, type Json } from '../services/ingestion/nextmove-fixtures.js';

t.test('a DPI letter through /api/, services as processes: pulled and decrypted by the provider, opened; LEVERT and LEST via /api/statuses and the webhook', async (t) => {
  const { url, db } = await testDatabase(t);
  const dataDir = testDataDir(t);
  const env = {
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    QUEUE_PREFIX: 'e2e_nextmove',
    LOG_LEVEL: 'info',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_POLL_MS: '50',
  };
  const { ingestion, storage, I, S } = await startLetterPath(t, env);

  const sender = (await db.kysely.selectFrom('senders').select('orgnr').where('status', '=', 'active').orderBy('orgnr').limit(1).executeTakeFirstOrThrow()).orgnr;
  const asSender = { authorization: `Bearer ${await issueDevToken(dataDir, { org: sender, scope: SCOPES.send, audience: 'postbud' })}` };
  const examples = JSON.parse(readFileSync(path.join(dataDir, 'seed-persons.json'), 'utf8')) as Record<string, string[]>;
  const personId = examples.mailbox![0]!;
  const api = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${I}${p}`, {
      method,
      headers: { ...asSender, ...(body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, text, json: (): Json => JSON.parse(text) };
  };

  // The agency's push endpoint.
  const pushed: { body: Buffer; signature: string }[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      pushed.push({ body: Buffer.concat(parts), signature: String(req.headers['postbud-signature']) });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`;
  const sub = await api('POST', '/api/subscriptions', { ...DOCS.createSubscription.request, pushEndpoint: endpoint, filter: 'direction=OUTGOING' });
  t.equal(sub.status, 200, sub.text);
  t.equal(JSON.parse(pushed[0]!.body.toString()).event, 'ping');

  // Capabilities, create, upload twice, send.
  const caps = await api('GET', `/api/capabilities/${personId}`);
  t.same(caps.json().capabilities.map((c: Json) => c.documentTypes[0].type), ['digital', 'digital']);
  const sbd = substitute(DOCS.createDigital.request, sender, personId);
  sbd.digital.hoveddokument = 'vedtak.pdf';
  sbd.digital.tittel = 'Vedtak om bostøtte';
  const id = sbd.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier as string;
  t.equal((await api('POST', '/api/messages/out', sbd)).status, 200);
  const pdf = PDF(300_000);
  const up1 = await api('PUT', `/api/messages/out/${id}`, pdf, { 'content-type': 'application/pdf', 'content-disposition': 'attachment; name=Vedtak; filename=vedtak.pdf' });
  t.equal(up1.status, 200, up1.text);
  const up2 = await api('PUT', `/api/messages/out/${id}`, DOCS.upload.request.body, { 'content-type': 'text/plain;charset=UTF-8', 'content-disposition': DOCS.upload.request.headers['Content-Disposition'] });
  t.equal(up2.status, 200, up2.text);
  const send = await api('POST', `/api/messages/out/${id}`);
  t.equal(send.status, 200, send.text);

  // The provider pulls, downloads the CMS and decrypts it with openssl.
  const provider = (await db.kysely.selectFrom('messages').select('provider_orgnr').where('id', '=', id).executeTakeFirstOrThrow()).provider_orgnr;
  const asProvider = { authorization: `Bearer ${await issueDevToken(dataDir, { org: provider, scope: SCOPES.provider, audience: 'postbud' })}` };
  const list = (await (await fetch(`${S}/v1/deliveries?limit=100`, { headers: asProvider })).json()) as { deliveries: { id: string; messageId: string }[] };
  const delivery = list.deliveries.find((d) => d.messageId === id);
  t.ok(delivery, 'offered to the provider under the next-move messageId');
  const cms = Buffer.from(await (await fetch(`${S}/v1/deliveries/${delivery!.id}/package`, { headers: asProvider })).arrayBuffer());
  const credentials = path.join(dataDir, 'providers', provider);
  const zip = await opensslDecrypt(t, cms, { certDer: Buffer.alloc(0), certPem: readFileSync(path.join(credentials, 'cert.pem'), 'utf8'), keyPem: readFileSync(path.join(credentials, 'key.pem'), 'utf8') });
  const entries = await unzip(zip);
  t.ok(entries.get('vedtak.pdf')?.equals(pdf), 'the main document, byte for byte');
  t.equal(entries.get('before_the_law.txt')?.toString(), DOCS.upload.request.body);
  const manifest = JSON.parse(entries.get('manifest.json')!.toString()) as { messageId: string; title: string; documents: { name: string }[]; securityLevel: number; openReceipt: boolean };
  t.match(manifest, { messageId: id, title: 'Vedtak om bostøtte', securityLevel: 4, openReceipt: true });
  t.same(manifest.documents.map((d) => d.name), ['vedtak.pdf', 'before_the_law.txt'], 'hoveddokument first');
  const jwks = (await (await fetch(`${I}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  const keySet = createLocalJWKSet(jwks);
  const [mh, , ms] = entries.get('META-INF/manifest.jws')!.toString().split('.');
  await compactVerify(`${mh}.${entries.get('manifest.json')!.toString('base64url')}.${ms}`, keySet);

  // Acknowledged, then opened.
  t.equal((await fetch(`${S}/v1/deliveries/${delivery!.id}/ack`, { method: 'POST', headers: asProvider })).status, 200);
  const opened = await fetch(`${S}/v1/deliveries/${delivery!.id}/events`, {
    method: 'POST',
    headers: { ...asProvider, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 }),
  });
  t.equal(opened.status, 200, await opened.clone().text());

  // next-move statuses, polled and pushed.
  const statuses = await waitFor('LEST via /api/statuses', async () => {
    const page = (await api('GET', `/api/statuses/${id}`)).json();
    const list = page.content.map((s: Json) => s.status) as string[];
    return list.includes('LEST') ? list : undefined;
  });
  t.same(statuses, ['OPPRETTET', 'SENDT', 'LEVERT', 'LEST']);
  t.match((await api('GET', '/api/statuses/peek')).json(), { messageId: id, status: 'LEST' });
  const events = await waitFor('LEVERT and LEST pushed', async () => {
    const got = pushed.map((p) => JSON.parse(p.body.toString()) as Json).filter((e) => e.event === 'status');
    return got.some((e) => e.status === 'LEST') ? got : undefined;
  });
  t.same(events.map((e) => e.status), ['OPPRETTET', 'SENDT', 'LEVERT', 'LEST'].filter((s) => events.some((e) => e.status === s)));
  t.ok(['LEVERT', 'LEST'].every((s) => events.some((e) => e.status === s && e.messageId === id && e.direction === 'OUTGOING' && e.serviceIdentifier === 'DPI')));
  for (const p of pushed) {
    const [h, , s] = p.signature.split('.');
    await compactVerify(`${h}.${p.body.toString('base64url')}.${s}`, keySet);
  }
  t.pass('every push is signed by the hub');
  const conv = (await api('GET', `/api/conversations/messageId/${id}`)).json();
  t.match(conv, { messageId: id, finished: true, serviceIdentifier: 'DPI', direction: 'OUTGOING' });

  // The same letter's native receipts verify against the JWKS and the event chain.
  const pulled = (await (await fetch(`${I}/v1/receipts?limit=100`, { headers: asSender })).json()) as { receipts: { type: string; messageId: string; jws: string }[] };
  const mine = pulled.receipts.filter((r) => r.messageId === id);
  t.same(mine.map((r) => r.type), ['DELIVERED', 'OPENED']);
  const chain = await eventChain(db.kysely, id);
  for (const r of mine) {
    const v = await verifyReceipt(r.jws, { jwks, events: chain });
    t.ok(v.valid, `${r.type} receipt verifies ${v.problems.join('; ')}`);
  }

  const logs = ingestion.output() + storage.output();
  t.notOk(logs.includes(personId), 'no personId in the logs');
  t.notOk(logs.includes('bostøtte'), 'no title in the logs');
  t.notOk(logs.includes('gatekeeper'), 'no document text in the logs');

  ingestion.child.kill('SIGTERM');
  storage.child.kill('SIGTERM');
  t.equal((await ingestion.exited).code, 0);
  t.equal((await storage.exited).code, 0);
});
