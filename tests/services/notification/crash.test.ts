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
import t from 'tap';
import { startSmsGateway, startSmtpSink } from '../../harness/alert-peers.js';
import { freePort } from '../../harness/free-port.js';
import { hasRedisServer, startRedisServer, type RedisProcess } from '../../harness/redis-server.js';
import { testDatabase } from '../../helpers/database.js';
import { testDataDir } from '../../helpers/service.js';
import { assertEachAlertOnce, attemptStates, CRASH_SETTINGS, deliveredLetters, startWorker } from './crash-harness.js';

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
  await deliveredLetters(kysely, LETTERS, 50_000);
  const env = {
    ...CRASH_SETTINGS,
    DATABASE_URL: url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: 'crash',
    DATA_DIR: testDataDir(t),
    SMTP_URL: smtp.url,
    SMS_GATEWAY_URL: sms.url,
    NOTIFY_EMAIL_PER_SECOND: '120',
    NOTIFY_SMS_PER_SECOND: '120',
  };
  const httpPort = await freePort();

  let worker = await startWorker(t, env, httpPort);
  let kills = 0;
  let redisRestarted = false;
  const deadline = Date.now() + 120_000;
  // Kills land at fixed points of progress (plus jitter), not on a timer: on a fast machine a
  // timer could let every alert through before the crashes this test is about.
  const killAt = [0.15, 0.3, 0.45, 0.6, 0.75].map((f) => Math.round(f * 2 * LETTERS));
  for (;;) {
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
    const c = (await attemptStates(kysely)) ?? {};
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
    worker = await startWorker(t, env, httpPort);
  }
  // What an operator's scrape shows of the crashes, read before the last worker stops.
  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  worker.child.kill('SIGTERM');
  await worker.exited;

  t.ok(kills >= 4, `worker killed ${kills} times while alerts flowed`);
  t.ok(redisRestarted, 'redis-server restarted once');
  await assertEachAlertOnce(t, kysely, LETTERS, smtp, sms, metrics);
});
