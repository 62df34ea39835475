/**
 * The alert flow across services, each its own process: storage turns the provider's
 * acknowledgement into DELIVERED, the notification service sends the e-mail and the SMS to a real
 * SMTP server and SMS gateway, the sender pulls a NOTIFIED receipt from ingestion, and OPENED
 * reported to storage cancels the repetition.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { JSONWebKeySet } from 'jose';
import { sql } from 'kysely';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { loadEvents } from '../../shared/evidence/events.js';
import { verifyReceipt } from '../../shared/evidence/verify.js';
import { startSmsGateway, startSmtpSink } from '../harness/alert-peers.js';
import { freePort } from '../harness/free-port.js';
import { testDatabase } from '../helpers/database.js';
import { fetchRetrying503, runTs, waitForHttp } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';
import { multipart, PDF } from '../services/ingestion/fixtures.js';

/** Three processes on a loaded CI machine: generous, since a pass never waits for it. */
const PATIENCE_MS = 60_000;

t.test('alerts across services as processes: DELIVERED -> e-mail and SMS -> NOTIFIED receipt; OPENED cancels the repetition', async (t) => {
  const { url, db } = await testDatabase(t);
  const kysely = db.kysely;
  const dataDir = testDataDir(t);
  const smtp = await startSmtpSink();
  const gateway = await startSmsGateway();
  t.teardown(() => Promise.all([smtp.close(), gateway.close()]));
  const [ingestionPort, storagePort, notificationPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const env = {
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    QUEUE_PREFIX: 'e2e_alerts',
    LOG_LEVEL: 'info',
    INGESTION_PORT: String(ingestionPort),
    STORAGE_PORT: String(storagePort),
    NOTIFICATION_PORT: String(notificationPort),
    SMTP_URL: smtp.url,
    SMTP_REQUIRE_TLS: 'false',
    SMS_GATEWAY_URL: gateway.url,
    // The test runs at any hour: the window is the whole day.
    NOTIFY_WINDOW_START: '00:00',
    NOTIFY_WINDOW_END: '24:00',
    OUTBOX_POLL_MS: '200',
  };

  const seed = runTs(t, 'scripts/cli.ts', ['seed', '--persons', '60'], env);
  t.equal((await seed.exited).code, 0, seed.output());
  const services = ['ingestion', 'storage', 'notification'].map((name) => runTs(t, `services/${name}/main.ts`, [], env));
  const [I, S, N] = [ingestionPort, storagePort, notificationPort].map((p) => `http://127.0.0.1:${p}`) as [string, string, string];
  for (const base of [I, S, N]) await waitForHttp(`${base}/health/ready`, 60_000);

  const sender = await kysely.selectFrom('senders').select(['orgnr', 'name']).where('status', '=', 'active').orderBy('orgnr').limit(1).executeTakeFirstOrThrow();
  const asSender = { authorization: `Bearer ${await issueDevToken(dataDir, { org: sender.orgnr, scope: SCOPES.send, audience: 'postbud' })}` };
  const examples = JSON.parse(readFileSync(path.join(dataDir, 'seed-persons.json'), 'utf8')) as Record<string, string[]>;
  const personId = examples.mailbox![0]!;
  // The citizen keeps both contact points current (the seed gives some persons only one).
  const email = 'kari.nordmann.e2e@example.no';
  const mobile = '+4791234567';
  await sql`update persons set email = ${email}, email_updated_at = now(), mobile = ${mobile}, mobile_updated_at = now() where person_id = ${personId}`.execute(kysely);

  const title = 'Vedtak om bostøtte';
  const body = multipart(
    {
      recipient: { personId },
      title,
      language: 'nb',
      securityLevel: 3,
      openReceipt: true,
      notifications: { email: {}, sms: {}, repeatAfterDays: [0, 7] },
      documents: [{ name: 'vedtak.pdf', mime: 'application/pdf', main: true }],
    },
    [{ name: 'vedtak.pdf', content: PDF(20_000) }],
  );
  const sent = await fetchRetrying503(`${I}/v1/messages`, { method: 'POST', headers: { ...asSender, 'content-type': body.contentType, 'idempotency-key': 'e2e-alert-1' }, body: body.payload });
  const accepted = (await sent.json()) as { id: string; provider: { orgnr: string } };
  t.equal(sent.status, 201, JSON.stringify(accepted));

  // Nothing goes out before the provider has the letter.
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(smtp.mails.length + gateway.messages.length, 0, 'no alert before DELIVERED');

  const asProvider = { authorization: `Bearer ${await issueDevToken(dataDir, { org: accepted.provider.orgnr, scope: SCOPES.provider, audience: 'postbud' })}` };
  const list = (await (await fetch(`${S}/v1/deliveries?limit=100`, { headers: asProvider })).json()) as { deliveries: { id: string; messageId: string }[] };
  const delivery = list.deliveries.find((d) => d.messageId === accepted.id)!;
  t.equal((await fetch(`${S}/v1/deliveries/${delivery.id}/ack`, { method: 'POST', headers: asProvider })).status, 200);

  // The alerts, as the citizen's mail system and phone get them.
  const mail = await waitFor('the e-mail', async () => smtp.mails.find((m) => m.to === email), PATIENCE_MS);
  const text = await waitFor('the SMS', async () => gateway.messages.find((m) => m.to === mobile), PATIENCE_MS);
  t.equal(mail.subject, 'Du har fått digital post', 'the default subject, in the language of the letter');
  t.match(mail.text, sender.name, 'the e-mail names the sender');
  t.match(mail.text, title, 'the e-mail names the non-sensitive title');
  t.match(text.text, sender.name, 'the SMS names the sender');
  for (const s of [mail.subject, mail.text, text.text]) t.notMatch(s, /https?:|www\./i, 'never a link');

  // The sender's NOTIFIED receipt, signed by the hub and on the letter's evidence chain.
  const jwks = (await (await fetch(`${I}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  const receipts = await waitFor('the NOTIFIED receipt', async () => {
    const pulled = (await (await fetch(`${I}/v1/receipts?limit=100`, { headers: asSender })).json()) as { receipts: { type: string; messageId: string; jws: string }[] };
    const mine = pulled.receipts.filter((r) => r.messageId === accepted.id);
    return mine.some((r) => r.type === 'NOTIFIED') && mine;
  }, PATIENCE_MS, 200);
  t.same(receipts.map((r) => r.type), ['DELIVERED', 'NOTIFIED'], 'one NOTIFIED for the two channels');
  const notified = await verifyReceipt(receipts[1]!.jws, { jwks, events: await loadEvents(kysely, accepted.id) });
  t.ok(notified.valid, `NOTIFIED verifies: ${notified.problems.join('; ')}`);
  t.match(notified.receipt, { type: 'NOTIFIED', messageId: accepted.id, data: { repetition: 0, notifiedAt: String } });

  const attempts = () => kysely.selectFrom('notification_attempts').select(['channel', 'repetition', 'state', 'due_at']).where('message_id', '=', accepted.id).orderBy('channel').orderBy('repetition').execute();
  const rows = await waitFor('both first alerts SENT', async () => {
    const r = await attempts();
    return r.filter((a) => a.repetition === 0).every((a) => a.state === 'SENT') && r;
  }, PATIENCE_MS, 200);
  t.same(rows.map((a) => `${a.channel}/${a.repetition}/${a.state}`), ['email/0/SENT', 'email/1/SCHEDULED', 'sms/0/SENT', 'sms/1/SCHEDULED']);
  const days = (rows[1]!.due_at.getTime() - Date.now()) / 86_400_000;
  t.ok(days > 6.9 && days <= 7, `the repetition is due in 7 days (${days.toFixed(3)})`);

  // OPENED at the provider: the repetition is called off.
  const opened = await fetch(`${S}/v1/deliveries/${delivery.id}/events`, {
    method: 'POST',
    headers: { ...asProvider, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 3 }),
  });
  t.equal(opened.status, 200, await opened.clone().text());
  const after = await waitFor('the repetition cancelled', async () => {
    const r = await attempts();
    return r.filter((a) => a.repetition === 1).every((a) => a.state === 'CANCELLED') && r;
  }, PATIENCE_MS, 200);
  t.same(after.map((a) => a.state), ['SENT', 'CANCELLED', 'SENT', 'CANCELLED']);
  const status = (await (await fetch(`${I}/v1/messages/${accepted.id}`, { headers: asSender })).json()) as { status: string; timeline: { type: string }[] };
  t.same(status.timeline.map((e) => e.type), ['SEALED', 'DELIVERED', 'NOTIFIED', 'OPENED']);
  t.equal(smtp.mails.length, 1, 'one e-mail');
  t.equal(gateway.messages.length, 1, 'one SMS');

  for (const s of services) s.child.kill('SIGTERM');
  for (const s of services) t.equal((await s.exited).code, 0, 'stops cleanly');
  const logs = services.map((s) => s.output()).join('\n');
  for (const secret of [personId, email, mobile, title, '91234567']) t.notOk(logs.includes(secret), 'no personId, address, number or title in any log line');
});
