/**
 * Crash test: 2,000 alerts (1,000 letters, e-mail and SMS) flow through notification workers
 * running as their own processes on Redis, while the worker is killed with SIGKILL again and
 * again and redis-server is restarted once (AOF on, same dir and port). Every alert must arrive,
 * none twice: a raw retransmission is allowed only for an attempt whose worker died between the
 * peer's answer and the commit (flagged ambiguous), under the same key, which the mail store
 * (duplicate suppression by Message-ID) and the SMS gateway (by reference) deliver once. The
 * decision and its reasons: docs/notification.md, 'Exactly once'.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import t from 'tap';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { enqueue } from '../../../shared/outbox/outbox.js';
import { startSmsGateway, startSmtpSink } from '../../harness/alert-peers.js';
import { freePort } from '../../harness/free-port.js';
import { hasRedisServer, startRedisServer, type RedisProcess } from '../../harness/redis-server.js';
import { testDatabase } from '../../helpers/database.js';
import { runTs, waitForHttp, type Proc } from '../../helpers/processes.js';
import { testDataDir } from '../../helpers/service.js';
import { insertSender, SENDER } from './fixtures.js';

const LETTERS = 1000;

t.test('alerts survive SIGKILLed workers and a Redis restart: all sent, none twice', { skip: hasRedisServer() ? false : 'no redis-server', timeout: 170_000 }, async (t) => {
  const { url, db } = await testDatabase(t);
  const redisDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-redis-'));
  t.teardown(() => rmSync(redisDir, { recursive: true, force: true }));
  const port = await freePort();
  let redis: RedisProcess = await startRedisServer({ port, dir: redisDir, appendOnly: true });
  t.teardown(() => redis.stop());
  const smtp = await startSmtpSink();
  const sms = await startSmsGateway();
  t.teardown(() => Promise.all([smtp.close(), sms.close()]));

  const kysely = db.kysely;
  await insertSender(kysely, SENDER, 'Skatteetaten');
  const ids = syntheticPersonIdList(LETTERS, 50_000);
  await sql`insert into persons (person_id, email, email_updated_at, mobile, mobile_updated_at)
    select p, 'p' || i || '@example.no', now(), '+479' || lpad(i::text, 6, '0') || '1', now()
    from unnest(${sql.val(ids)}::text[]) with ordinality as x(p, i)`.execute(kysely);
  await sql`insert into messages (id, sender_orgnr, person_id, title, language, security_level, available_at, notifications, route, provider_orgnr, package_id, manifest_sha256, documents)
    select gen_random_uuid(), ${SENDER}, p, 'Skattemelding', 'nb', 4, now(), '{"email":{},"sms":{},"repeatAfterDays":[0]}'::jsonb, 'DIGITAL', '984661185', gen_random_uuid(), 'x', '[]'::jsonb
    from unnest(${sql.val(ids)}::text[]) as x(p)`.execute(kysely);
  const messageIds = (await kysely.selectFrom('messages').select('id').execute()).map((r) => r.id);

  const dataDir = testDataDir(t);
  const env = {
    DATABASE_URL: url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'crash',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    SMTP_URL: smtp.url,
    SMTP_REQUIRE_TLS: 'false',
    SMS_GATEWAY_URL: sms.url,
    // Always daytime, quick takeover of a dead worker's jobs, a pace that keeps alerts flowing across several kills.
    NOTIFY_WINDOW_START: '00:00',
    NOTIFY_WINDOW_END: '24:00',
    NOTIFY_STALLED_MS: '2000',
    NOTIFY_CLAIM_LEASE_MS: '3000',
    NOTIFY_BACKOFF_MS: '200',
    NOTIFY_ATTEMPTS: '20',
    NOTIFY_EMAIL_PER_SECOND: '120',
    NOTIFY_SMS_PER_SECOND: '120',
    OUTBOX_POLL_MS: '200',
  };
  const httpPort = await freePort();
  const start = async (): Promise<Proc> => {
    const p = runTs(t, 'services/notification/main.ts', [], { ...env, NOTIFICATION_PORT: String(httpPort) });
    await waitForHttp(`http://127.0.0.1:${httpPort}/health/live`, 60_000);
    return p;
  };

  // The DELIVERED events, as storage's outbox writes them.
  await kysely.transaction().execute((trx) => enqueue(trx, messageIds.map((messageId) => ({ queue: 'notification', name: 'delivery-event', data: { messageId, type: 'DELIVERED' } }))));

  const counts = async () => {
    const rows = await sql<{ state: string; n: string }>`select state, count(*) as n from notification_attempts group by state`.execute(kysely);
    return Object.fromEntries(rows.rows.map((r) => [r.state, Number(r.n)])) as Record<string, number>;
  };

  let worker = await start();
  let kills = 0;
  let redisRestarted = false;
  const deadline = Date.now() + 120_000;
  // Kills land at fixed points of progress (plus jitter), not on a timer: on a fast machine a
  // timer could let every alert through before the crashes this test is about.
  const killAt = [0.15, 0.3, 0.45, 0.6, 0.75].map((f) => Math.round(f * 2 * LETTERS));
  for (;;) {
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
    const c = await counts();
    if ((c.SENT ?? 0) === 2 * LETTERS) break;
    const due = kills < killAt.length && (c.SENT ?? 0) >= killAt[kills]!;
    if (Date.now() > deadline) {
      const open = await kysely.selectFrom('notification_attempts').selectAll().where('state', '<>', 'SENT').execute();
      const { Queue } = await import('bullmq');
      const { Redis } = await import('ioredis');
      const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
      const jobs = [];
      for (const r of open) {
        const q = new Queue(r.channel === 'email' ? 'alerts-email' : 'alerts-sms', { connection: conn, prefix: 'crash' });
        const j = r.job_id ? await q.getJob(r.job_id) : undefined;
        jobs.push({ state: j ? await j.getState() : 'missing', failedReason: j?.failedReason, attemptsStarted: j?.attemptsStarted, stalled: j?.stalledCounter });
        await q.close();
      }
      conn.disconnect();
      throw new Error(`not done in time: ${JSON.stringify(c)}\n${JSON.stringify(open)}\n${JSON.stringify(jobs)}\n${worker.output().slice(-2000)}`);
    }
    if (!due) continue;
    t.comment(`kill ${kills + 1} at ${JSON.stringify(c)}`);
    worker.child.kill('SIGKILL');
    await worker.exited;
    kills++;
    if (kills === 3 && !redisRestarted) {
      await redis.stop();
      redis = await startRedisServer({ port, dir: redisDir, appendOnly: true });
      redisRestarted = true;
    }
    worker = await start();
  }
  // What an operator's scrape shows of the crashes, read before the last worker stops.
  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  worker.child.kill('SIGTERM');
  await worker.exited;

  t.ok(kills >= 4, `worker killed ${kills} times while alerts flowed`);
  t.ok(redisRestarted, 'redis-server restarted once');
  const rows = await kysely.selectFrom('notification_attempts').select(['id', 'channel', 'state', 'ambiguous']).execute();
  t.equal(rows.length, 2 * LETTERS, 'one attempt per letter and channel');
  t.ok(rows.every((r) => r.state === 'SENT'), 'every alert sent');

  const mailIds = new Set(smtp.mails.map((m) => m.alertKey));
  const smsIds = new Set(sms.messages.map((m) => m.reference));
  t.equal(smtp.mails.length, LETTERS, 'one e-mail per letter in the mail store');
  t.equal(mailIds.size, LETTERS);
  t.equal(sms.messages.length, LETTERS, 'one SMS per letter at the gateway');
  t.equal(smsIds.size, LETTERS);
  t.ok(rows.every((r) => (r.channel === 'email' ? mailIds : smsIds).has(r.id)), 'each attempt arrived under its own key');

  // Raw transmissions: an attempt resent after a crash between the send and its commit is
  // flagged ambiguous in Postgres and resent under the same Message-ID / reference.
  const ambiguous = new Set(rows.filter((r) => r.ambiguous).map((r) => r.id));
  const resentMail = [...smtp.transmissions].filter(([, n]) => n > 1).map(([mid]) => /^<(.*)@/.exec(mid)![1]!);
  const resentSms = [...sms.requests].filter(([, n]) => n > 1).map(([ref]) => ref);
  t.ok([...resentMail, ...resentSms].every((id) => ambiguous.has(id)), 'only ambiguous attempts were transmitted again, under the same key');
  t.comment(`kills=${kills} ambiguous=${ambiguous.size} smtp retransmissions=${resentMail.length} sms re-requests=${resentSms.length}`);
  for (const channel of ['email', 'sms'] as const) {
    const flagged = rows.filter((r) => r.ambiguous && r.channel === channel).length;
    t.match(metrics, new RegExp(`notification_ambiguous_attempts\\{channel="${channel}"[^}]*\\} ${flagged}\\n`), `/metrics shows the ${flagged} ${channel} attempts taken over after a crash`);
  }

  const notified = await sql<{ n: string }>`select count(*) as n from message_events where type = 'NOTIFIED'`.execute(kysely);
  t.equal(Number(notified.rows[0]!.n), LETTERS, 'NOTIFIED once per letter');
});
