/**
 * What the crash tests share: letters asking for one e-mail and one SMS, the notification worker
 * as its own process, the DELIVERED events as storage's outbox writes them, and the checks that
 * every alert arrived once.
 */
import { sql, type Kysely } from 'kysely';
import type { Test } from 'tap';
import type { Database } from '../../../shared/db/database.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { enqueue } from '../../../shared/outbox/outbox.js';
import type { SmsGateway, SmtpSink } from '../../harness/alert-peers.js';
import { runTs, waitForHttp, type Proc } from '../../helpers/processes.js';
import { insertSender, SENDER } from './fixtures.js';

/** `letters` letters to persons with fresh e-mail and mobile, each asking for both, once; their DELIVERED events queued. */
export async function deliveredLetters(db: Kysely<Database>, letters: number, idBase: number): Promise<string[]> {
  await insertSender(db, SENDER, 'Skatteetaten');
  const ids = syntheticPersonIdList(letters, idBase);
  await sql`insert into persons (person_id, email, email_updated_at, mobile, mobile_updated_at)
    select p, 'p' || i || '@example.no', now(), '+479' || lpad(i::text, 6, '0') || '1', now()
    from unnest(${sql.val(ids)}::text[]) with ordinality as x(p, i)`.execute(db);
  const { rows } = await sql<{ id: string }>`insert into messages (id, sender_orgnr, person_id, title, language, security_level, available_at, notifications, route, provider_orgnr, package_id, manifest_sha256, documents)
    select gen_random_uuid(), ${SENDER}, p, 'Skattemelding', 'nb', 4, now(), '{"email":{},"sms":{},"repeatAfterDays":[0]}'::jsonb, 'DIGITAL', '984661185', gen_random_uuid(), 'x', '[]'::jsonb
    from unnest(${sql.val(ids)}::text[]) as x(p) returning id`.execute(db);
  const messageIds = rows.map((r) => r.id);
  await db.transaction().execute((trx) => enqueue(trx, messageIds.map((messageId) => ({ queue: 'notification', name: 'delivery-event', data: { messageId, type: 'DELIVERED' } }))));
  return messageIds;
}

/** Settings for a worker under crash tests: always daytime, quick takeover of a dead worker's jobs, a pace that spans the crashes. */
export const CRASH_SETTINGS = {
  LOG_LEVEL: 'warn',
  SMTP_REQUIRE_TLS: 'false',
  NOTIFY_WINDOW_START: '00:00',
  NOTIFY_WINDOW_END: '24:00',
  NOTIFY_STALLED_MS: '2000',
  NOTIFY_CLAIM_LEASE_MS: '3000',
  NOTIFY_BACKOFF_MS: '200',
  NOTIFY_ATTEMPTS: '20',
  OUTBOX_POLL_MS: '200',
};

/** The notification service as its own process, once it answers. */
export async function startWorker(t: Test, env: Record<string, string>, httpPort: number): Promise<Proc> {
  const p = runTs(t, 'services/notification/main.ts', [], { ...env, NOTIFICATION_PORT: String(httpPort) });
  await waitForHttp(`http://127.0.0.1:${httpPort}/health/live`, 60_000);
  return p;
}

/** Attempts per state; undefined while the database cannot answer. */
export async function attemptStates(db: Kysely<Database>): Promise<Record<string, number> | undefined> {
  try {
    const rows = await sql<{ state: string; n: string }>`select state, count(*) as n from notification_attempts group by state`.execute(db);
    return Object.fromEntries(rows.rows.map((r) => [r.state, Number(r.n)]));
  } catch {
    return undefined;
  }
}

/**
 * Every alert arrived, none twice: each attempt SENT; one mail per letter in the mail store
 * (duplicates suppressed by Message-ID) and one SMS per letter at the gateway; a raw
 * retransmission only for an attempt flagged ambiguous (its worker died between the peer's
 * answer and the commit), under its own key; NOTIFIED once per letter; `/metrics` (scraped
 * before the worker stopped) showing the ambiguous attempts.
 */
export async function assertEachAlertOnce(t: Test, db: Kysely<Database>, letters: number, smtp: SmtpSink, sms: SmsGateway, metrics: string): Promise<void> {
  const rows = await db.selectFrom('notification_attempts').select(['id', 'channel', 'state', 'ambiguous']).execute();
  t.equal(rows.length, 2 * letters, 'one attempt per letter and channel');
  t.ok(rows.every((r) => r.state === 'SENT'), 'every alert sent');

  const mailIds = new Set(smtp.mails.map((m) => m.alertKey));
  const smsIds = new Set(sms.messages.map((m) => m.reference));
  t.equal(smtp.mails.length, letters, 'one e-mail per letter in the mail store');
  t.equal(mailIds.size, letters);
  t.equal(sms.messages.length, letters, 'one SMS per letter at the gateway');
  t.equal(smsIds.size, letters);
  t.ok(rows.every((r) => (r.channel === 'email' ? mailIds : smsIds).has(r.id)), 'each attempt arrived under its own key');

  const ambiguous = new Set(rows.filter((r) => r.ambiguous).map((r) => r.id));
  const resentMail = [...smtp.transmissions].filter(([, n]) => n > 1).map(([mid]) => /^<(.*)@/.exec(mid)![1]!);
  const resentSms = [...sms.requests].filter(([, n]) => n > 1).map(([ref]) => ref);
  t.ok([...resentMail, ...resentSms].every((id) => ambiguous.has(id)), 'only ambiguous attempts were transmitted again, under the same key');
  t.comment(`ambiguous=${ambiguous.size} smtp retransmissions=${resentMail.length} sms re-requests=${resentSms.length}`);
  for (const channel of ['email', 'sms'] as const) {
    const flagged = rows.filter((r) => r.ambiguous && r.channel === channel).length;
    t.match(metrics, new RegExp(`notification_ambiguous_attempts\\{channel="${channel}"[^}]*\\} ${flagged}\\n`), `/metrics shows the ${flagged} ${channel} attempts taken over after a crash`);
  }

  const notified = await sql<{ n: string }>`select count(*) as n from message_events where type = 'NOTIFIED'`.execute(db);
  t.equal(Number(notified.rows[0]!.n), letters, 'NOTIFIED once per letter');
}
