/**
 * Crash test on the embedded default (BullMQ on its PostgreSQL backend): Postgres itself, the
 * postmaster and every backend, is killed with SIGKILL twice while 1,000 alerts flow, and started
 * again on the same data directory (crash recovery). The notification service, its own process,
 * must ride the outages out, and every alert must still arrive once: the attempt rows (committed
 * synchronously) decide, whatever BullMQ's asynchronously committed job states lost, and jobs that
 * failed while the database was gone run again (the sweeper).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import t from 'tap';
import { connectDb } from '../../../shared/db/connect.js';
import { migrateToLatest } from '../../../shared/db/migrate.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../../shared/runtime/embedded-postgres.js';
import { startSmsGateway, startSmtpSink } from '../../harness/alert-peers.js';
import { freePort } from '../../harness/free-port.js';
import { testDataDir } from '../../helpers/service.js';
import { assertEachAlertOnce, attemptStates, CRASH_SETTINGS, deliveredLetters, startWorker } from './crash-harness.js';

const LETTERS = 500;

/** Kills the whole server (its own process group) at once, as a power cut would kill the processes. */
function crash(dataDir: string): void {
  const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(-pid, 'SIGKILL');
}

t.test('alerts on the Postgres backend survive Postgres killed outright: all sent, none twice', { timeout: 170_000 }, async (t) => {
  // Its own server: the harness's Postgres is shared by every test file.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'postbud-pgcrash-'));
  chmodSync(tmp, 0o755);
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const pgDir = path.join(tmp, 'pg');
  const pgPort = await freePort();
  let server: EmbeddedDatabase = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
  t.teardown(() => server.stop());
  const db = connectDb(server.url, { poolSize: 3 });
  t.teardown(() => db.close());
  await migrateToLatest(db.kysely);
  const smtp = await startSmtpSink();
  const sms = await startSmsGateway();
  t.teardown(() => Promise.all([smtp.close(), sms.close()]));

  await deliveredLetters(db.kysely, LETTERS, 60_000);
  const env = {
    ...CRASH_SETTINGS,
    DATABASE_URL: server.url,
    QUEUE_PREFIX: 'pgcrash',
    DATA_DIR: testDataDir(t),
    SMTP_URL: smtp.url,
    SMS_GATEWAY_URL: sms.url,
    NOTIFY_EMAIL_PER_SECOND: '60',
    NOTIFY_SMS_PER_SECOND: '60',
    // Jobs that failed while the database was gone are picked up again within seconds.
    NOTIFY_SWEEP_SECONDS: '2',
  };
  const httpPort = await freePort();
  const worker = await startWorker(t, env, httpPort);
  let crashes = 0;
  const crashAt = [0.25, 0.6].map((f) => Math.round(f * 2 * LETTERS));
  const deadline = Date.now() + 140_000;
  for (;;) {
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 150));
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) throw new Error(`the notification service died with Postgres:\n${worker.output().slice(-3000)}`);
    const c = await attemptStates(db.kysely);
    if (!c) continue;
    if ((c.SENT ?? 0) === 2 * LETTERS) break;
    if (Date.now() > deadline) {
      const stuck = await sql<{ id: string; state: string; job_id: string; tries: number; job_state: string | null; attempts_started: number | null; failed_reason: string | null }>`
        select a.id, a.state, a.job_id, a.tries, j.state as job_state, j.attempts_started, j.failed_reason
        from notification_attempts a left join pgcrash.job j on j.id = a.job_id where a.state <> 'SENT'`.execute(db.kysely);
      throw new Error(`not done in time: ${JSON.stringify(c)}\n${JSON.stringify(stuck.rows.slice(0, 10))}`);
    }
    if (crashes >= crashAt.length || (c.SENT ?? 0) < crashAt[crashes]!) continue;
    t.comment(`Postgres crash ${crashes + 1} at ${JSON.stringify(c)}`);
    crash(pgDir);
    crashes++;
    await new Promise((r) => setTimeout(r, 500));
    server = await startEmbeddedPostgres({ dataDir: pgDir, port: pgPort });
  }
  const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  worker.child.kill('SIGTERM');
  await worker.exited;

  t.equal(crashes, 2, 'Postgres killed twice while alerts flowed');
  t.pass('the notification service rode out both outages (unready meanwhile, never restarted)');
  await assertEachAlertOnce(t, db.kysely, LETTERS, smtp, sms, metrics);
});
