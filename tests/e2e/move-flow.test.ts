/**
 * Acceptance for moving delivered mail (issue 14), every service its own process: a citizen with
 * three letters delivered at Digipost (one opened) switches to e-Boks and asks to move; Digipost
 * exports each letter sealed for the hub (openssl, as a provider would), e-Boks receives three
 * MOVED deliveries that decrypt with its key to the original documents, the chains show the
 * move, no alert is asked for or sent, and Digipost's deliveries are marked moved.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { sql } from 'kysely';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { checkChain } from '../../shared/evidence/chain.js';
import { loadEvents } from '../../shared/evidence/events.js';
import { startSmsGateway, startSmtpSink } from '../harness/alert-peers.js';
import { testDatabase } from '../helpers/database.js';
import { fetchRetrying503, startServices } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';
import { multipart, PDF } from '../services/ingestion/fixtures.js';
import { opensslDecrypt, unzip } from '../services/storage/fixtures.js';
import { opensslSealFor } from '../services/lifecycle/move-helpers.js';

const DIGIPOST = '984661185';
const EBOKS = '922020175';
const PATIENCE_MS = 60_000;

t.test('a citizen moves three delivered letters from Digipost to e-Boks, services as processes', async (t) => {
  const { url, db } = await testDatabase(t);
  const kysely = db.kysely;
  const dataDir = testDataDir(t);
  const smtp = await startSmtpSink();
  const gateway = await startSmsGateway();
  t.teardown(() => Promise.all([smtp.close(), gateway.close()]));
  const env = {
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    QUEUE_PREFIX: 'e2e_move',
    LOG_LEVEL: 'info',
    SMTP_URL: smtp.url,
    SMTP_REQUIRE_TLS: 'false',
    SMS_GATEWAY_URL: gateway.url,
    NOTIFY_WINDOW_START: '00:00',
    NOTIFY_WINDOW_END: '24:00',
    OUTBOX_POLL_MS: '200',
  };
  const { procs, urls } = await startServices(t, ['registry', 'ingestion', 'storage', 'notification'], env);
  const services = Object.values(procs);
  const [R, I, S] = [urls.registry, urls.ingestion, urls.storage];

  const token = (req: Record<string, string>) => issueDevToken(dataDir, { ...req, audience: 'postbud' } as never);
  const sender = (await kysely.selectFrom('senders').select('orgnr').where('status', '=', 'active').orderBy('orgnr').limit(1).executeTakeFirstOrThrow()).orgnr;
  const asSender = { authorization: `Bearer ${await token({ org: sender, scope: SCOPES.send })}` };
  const asDigipost = { authorization: `Bearer ${await token({ org: DIGIPOST, scope: SCOPES.provider })}` };
  const asEboks = { authorization: `Bearer ${await token({ org: EBOKS, scope: SCOPES.provider })}` };
  const examples = JSON.parse(readFileSync(path.join(dataDir, 'seed-persons.json'), 'utf8')) as Record<string, string[]>;
  const atDigipost = await kysely.selectFrom('mailboxes').select('person_id').where('active', '=', true).where('provider_orgnr', '=', DIGIPOST).where('person_id', 'in', examples.mailbox!).limit(1).executeTakeFirstOrThrow();
  const personId = atDigipost.person_id;
  const email = 'move.e2e@example.no';
  await sql`update persons set email = ${email}, email_updated_at = now(), reserved = false where person_id = ${personId}`.execute(kysely);
  const asCitizen = { authorization: `Bearer ${await token({ pid: personId, acr: 'idporten-loa-substantial' })}` };
  const json = async <T>(res: Promise<Response>): Promise<{ status: number; body: T }> => {
    const r = await res;
    return { status: r.status, body: (await r.json()) as T };
  };

  // Three letters, delivered at Digipost; the second one opened. Each gets its alert.
  const titles = ['Vedtak om bostøtte', 'Skattemelding 2026', 'Innkalling til time'];
  const letters: { id: string; pdf: Buffer; zip: Buffer; deliveryId: string }[] = [];
  for (const [i, title] of titles.entries()) {
    const pdf = PDF(30_000 + i);
    const body = multipart(
      { recipient: { personId }, title, language: 'nb', securityLevel: 3, openReceipt: true, notifications: { email: {}, repeatAfterDays: [0] }, documents: [{ name: 'brev.pdf', mime: 'application/pdf', main: true }] },
      [{ name: 'brev.pdf', content: pdf }],
    );
    const sent = await json<{ id: string; provider: { orgnr: string } }>(fetchRetrying503(`${I}/v1/messages`, { method: 'POST', headers: { ...asSender, 'content-type': body.contentType, 'idempotency-key': `e2e-move-${i}` }, body: body.payload }));
    t.equal(sent.status, 201);
    t.equal(sent.body.provider.orgnr, DIGIPOST);
    letters.push({ id: sent.body.id, pdf, zip: Buffer.alloc(0), deliveryId: '' });
  }
  const digipostKey = { certDer: Buffer.alloc(0), certPem: readFileSync(path.join(dataDir, 'providers', DIGIPOST, 'cert.pem'), 'utf8'), keyPem: readFileSync(path.join(dataDir, 'providers', DIGIPOST, 'key.pem'), 'utf8') };
  const eboksKey = { certDer: Buffer.alloc(0), certPem: readFileSync(path.join(dataDir, 'providers', EBOKS, 'cert.pem'), 'utf8'), keyPem: readFileSync(path.join(dataDir, 'providers', EBOKS, 'key.pem'), 'utf8') };
  const listed = await json<{ deliveries: { id: string; messageId: string }[] }>(fetch(`${S}/v1/deliveries?limit=500`, { headers: asDigipost }));
  for (const l of letters) {
    const d = listed.body.deliveries.find((x) => x.messageId === l.id)!;
    l.deliveryId = d.id;
    const cms = Buffer.from(await (await fetch(`${S}/v1/deliveries/${d.id}/package`, { headers: asDigipost })).arrayBuffer());
    l.zip = await opensslDecrypt(t, cms, digipostKey); // what Digipost keeps in the citizen's mailbox
    t.equal((await fetch(`${S}/v1/deliveries/${d.id}/ack`, { method: 'POST', headers: asDigipost })).status, 200);
  }
  await waitFor('the three original alerts', async () => smtp.mails.filter((m) => m.to === email).length >= 3, PATIENCE_MS, 100);
  await waitFor('the NOTIFIED events', async () => (await kysely.selectFrom('message_events').select('seq').where('type', '=', 'NOTIFIED').where('message_id', 'in', letters.map((l) => l.id)).execute()).length >= 3, PATIENCE_MS, 100);
  const openedAt = new Date().toISOString();
  const opened = await fetch(`${S}/v1/deliveries/${letters[1]!.deliveryId}/events`, { method: 'POST', headers: { ...asDigipost, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'OPENED', at: openedAt, securityLevel: 3 }) });
  t.equal(opened.status, 200);
  const attempts = async () => (await kysely.selectFrom('notification_attempts').select('id').where('person_id', '=', personId).execute()).length;
  const alertJobs = async () => Number((await sql<{ n: string }>`select count(*) as n from outbox where queue = 'notification' and job_name = 'delivery-event'`.execute(kysely)).rows[0]!.n);
  const attemptsBefore = await attempts();
  const jobsBefore = await alertJobs();
  t.equal(attemptsBefore, 3);

  // Before switching, there is nothing to move (Digipost is the current provider).
  const early = await json<{ type: string }>(fetch(`${S}/v1/me/moves`, { method: 'POST', headers: { ...asCitizen, 'content-type': 'application/json' }, body: '{}' }));
  t.equal(early.status, 409);
  t.equal(early.body.type, 'https://postbud.dev/problems/storage/no-previous-provider');

  // The citizen opens an e-Boks account (e-Boks registers it) and chooses it.
  const reg = await fetch(`${R}/v1/provider/mailboxes`, { method: 'POST', headers: { ...asEboks, 'content-type': 'application/json' }, body: JSON.stringify({ personId, address: 'move-e2e@eboks' }) });
  t.equal(reg.status, 201, await reg.clone().text());
  const me = await json<{ mailboxes: { id: string; providerOrgnr: string }[] }>(fetch(`${R}/v1/me`, { headers: asCitizen }));
  const eboksBox = me.body.mailboxes.find((m) => m.providerOrgnr === EBOKS)!;
  const chose = await fetch(`${R}/v1/me/mailbox`, { method: 'PUT', headers: { ...asCitizen, 'content-type': 'application/json' }, body: JSON.stringify({ mailboxId: eboksBox.id }) });
  t.equal(chose.status, 200, await chose.clone().text());

  // The move, asked at acr substantial; a second request at the same time is refused.
  const asked = await Promise.all([0, 1].map(() => json<{ id: string; letters: number; type?: string }>(fetch(`${S}/v1/me/moves`, { method: 'POST', headers: { ...asCitizen, 'content-type': 'application/json' }, body: '{}' }))));
  t.same(asked.map((a) => a.status).sort(), [201, 409]);
  const move = asked.find((a) => a.status === 201)!.body;
  t.equal(move.letters, 3);

  // Digipost's side: the feed, and each letter sealed for the hub's transport certificate.
  const feed = await json<{ transportCertificate: { pem: string }; exports: { id: string; messageId: string }[] }>(fetch(`${S}/v1/moves/exports`, { headers: asDigipost }));
  t.same(feed.body.exports.map((e) => e.messageId).sort(), letters.map((l) => l.id).sort());
  for (const e of feed.body.exports) {
    const zip = letters.find((l) => l.id === e.messageId)!.zip;
    const put = await fetch(`${S}/v1/moves/exports/${e.id}/package`, { method: 'PUT', headers: { ...asDigipost, 'content-type': 'application/pkcs7-mime' }, body: await opensslSealFor(t, zip, feed.body.transportCertificate.pem) });
    t.equal(put.status, 200, await put.clone().text());
  }
  const progress = await json<{ state: string; moved: number; failed: number; missing: number }>(fetch(`${S}/v1/me/moves/${move.id}`, { headers: asCitizen }));
  t.match(progress.body, { state: 'COMPLETED', moved: 3, failed: 0, missing: 0 }, 'the citizen sees the move completed');

  // e-Boks receives three MOVED deliveries that open with its key to the original documents.
  const inbox = await json<{ deliveries: { id: string; messageId: string; kind: string; mailboxAddress: string; original?: { openedAt: string | null; deliveredAt: string } }[] }>(fetch(`${S}/v1/deliveries?limit=500`, { headers: asEboks }));
  const moved = inbox.body.deliveries.filter((d) => letters.some((l) => l.id === d.messageId));
  t.equal(moved.length, 3);
  for (const d of moved) {
    const l = letters.find((x) => x.id === d.messageId)!;
    t.match(d, { kind: 'MOVED', mailboxAddress: 'move-e2e@eboks' });
    t.equal(d.original!.openedAt, l === letters[1] ? openedAt : null, 'opened time where known');
    const cms = Buffer.from(await (await fetch(`${S}/v1/deliveries/${d.id}/package`, { headers: asEboks })).arrayBuffer());
    const entries = await unzip(await opensslDecrypt(t, cms, eboksKey));
    t.ok(entries.find((e) => e.name === 'brev.pdf')!.data.equals(l.pdf), 'the document equals the original');
    const manifest = JSON.parse(entries.find((e) => e.name === 'manifest.json')!.data.toString()) as { messageId: string; sender: { orgnr: string } };
    t.match(manifest, { messageId: l.id, sender: { orgnr: sender } }, 'original metadata and sender');
    t.equal((await fetch(`${S}/v1/deliveries/${d.id}/ack`, { method: 'POST', headers: asEboks })).status, 200);
  }

  // The chains show the move, for the sender too; no alert; Digipost's deliveries are marked moved.
  for (const l of letters) {
    const events = await loadEvents(kysely, l.id);
    t.same(checkChain(events), [], 'the chain verifies');
    const status = await json<{ status: string; timeline: { type: string; data: Record<string, unknown> }[] }>(fetch(`${I}/v1/messages/${l.id}`, { headers: asSender }));
    const types = status.body.timeline.map((e) => e.type);
    t.same(types.filter((x) => x === 'MOVED_OUT' || x === 'MOVED_IN'), ['MOVED_OUT', 'MOVED_IN'], 'MOVED_OUT then MOVED_IN on the timeline');
    t.match(status.body.timeline.find((e) => e.type === 'MOVED_OUT')!.data, { fromProviderOrgnr: DIGIPOST, toProviderOrgnr: EBOKS, moveId: move.id });
    t.equal(status.body.status, l === letters[1] ? 'OPENED' : 'NOTIFIED', 'the status is not reset by the move');
  }
  t.equal((await kysely.selectFrom('notification_attempts').select('id').where('person_id', '=', personId).where('kind', '=', 'ALERT').execute()).length, attemptsBefore, 'no alert planned for the moved letters');
  t.equal(await alertJobs(), jobsBefore, 'nothing for the alert scheduler');
  // The one e-mail the move makes: the citizen told how it ended.
  const notice = await waitFor('the move notice', async () => smtp.mails.find((m) => m.to === email && m.subject === 'Flytting av posten din fra det offentlige'), PATIENCE_MS, 100);
  t.match(notice.text, /3 av 3 brev er flyttet/);
  t.equal(smtp.mails.filter((m) => m.to === email).length, 4, 'the three original alerts and the notice, nothing else');
  const states = await kysely.selectFrom('deliveries').select('state').where('id', 'in', letters.map((l) => l.deliveryId)).execute();
  t.same(states.map((s) => s.state), ['MOVED', 'MOVED', 'MOVED'], "Digipost's deliveries are marked moved");
  const receipts = await json<{ receipts: { type: string; messageId: string }[] }>(fetch(`${I}/v1/receipts?limit=100`, { headers: asSender }));
  t.notOk(receipts.body.receipts.some((r) => letters.some((l) => l.id === r.messageId) && !['DELIVERED', 'OPENED', 'NOTIFIED'].includes(r.type)), 'no new kind of receipt for the sender');

  const logs = services.map((s) => s.output()).join('');
  t.notOk(logs.includes(personId), 'no personId in the logs');
  t.notOk(titles.some((x) => logs.includes(x)), 'no title in the logs');
  for (const s of services) s.child.kill('SIGTERM');
  for (const s of services) t.equal((await s.exited).code, 0);
});
