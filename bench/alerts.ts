/**
 * Alerts per second end to end: DELIVERED events (as storage's outbox writes them) for letters
 * asking for e-mail and SMS, through scheduling, the alert workers, a real SMTP server and an HTTP
 * SMS gateway, until every attempt is SENT with its NOTIFIED event. Next to it, BullMQ's raw rate
 * of adding and processing empty jobs on the same backend. Redis and the PostgreSQL backend with
 * the workers in the bench process, and Redis with two notification service processes sharing the
 * work (BENCH_ALERT_RUNS, e.g. `redis,postgres,redis:2`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../shared/config/config.js';
import { connectDb, type Db } from '../shared/db/connect.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { syntheticPersonIdList } from '../shared/ids/person-id.js';
import { createLogger } from '../shared/logging/logger.js';
import { enqueue, startOutboxRelay } from '../shared/outbox/outbox.js';
import { createQueueFactory, type QueueBackendKind } from '../shared/queue/queues.js';
import { createTokenVerifier } from '../shared/auth/verifier.js';
import { ensureDevIssuer } from '../shared/auth/dev-issuer.js';
import { startWorkers } from '../services/notification/workers.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freePort } from '../tests/harness/free-port.js';
import { startRedisServer } from '../tests/harness/redis-server.js';
import { benchDatabase } from './lib/postgres.js';
import { report, type Row } from './lib/report.js';

const LETTERS = Number(process.env.BENCH_ALERT_LETTERS ?? 5000);
const RAW_JOBS = Number(process.env.BENCH_RAW_JOBS ?? 20_000);

async function rawBullmq(kind: QueueBackendKind, databaseUrl: string, redisUrl: string | undefined): Promise<number> {
  const queues = createQueueFactory({ redisUrl, databaseUrl, prefix: `raw_${randomBytes(4).toString('hex')}` });
  try {
    const queue = queues.queue('raw');
    let done = 0;
    const started = performance.now();
    const finished = new Promise<void>((resolve) => {
      queues.worker('raw', async () => {
        if (++done === RAW_JOBS) resolve();
      }, { concurrency: 100 });
    });
    for (let i = 0; i < RAW_JOBS; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, RAW_JOBS - i) }, () => ({ name: 'empty', data: {} })));
    }
    await finished;
    return RAW_JOBS / ((performance.now() - started) / 1000);
  } finally {
    await queues.close();
  }
}

/** The SMTP server and SMS gateway in a child process (bench/alert-peers-process.ts). */
async function startPeers(): Promise<{ smtp: string; sms: string; stats: string; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'alert-peers-process.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next().then((r) => [r.value as string]);
  return { ...(JSON.parse(line!) as { smtp: string; sms: string; stats: string }), stop: () => child.kill('SIGTERM') };
}

async function seed(db: Db, run: string): Promise<string[]> {
  const ids = syntheticPersonIdList(LETTERS, 100_000);
  await sql`insert into senders (orgnr, name) values ('974760673', 'Skatteetaten') on conflict do nothing`.execute(db.kysely);
  await sql`insert into persons (person_id, language, email, email_updated_at, mobile, mobile_updated_at)
    select p, 'nb', 'p' || i || '@example.no', now(), '+479' || lpad(i::text, 6, '0') || '1', now()
    from unnest(${sql.val(ids)}::text[]) with ordinality as x(p, i) on conflict do nothing`.execute(db.kysely);
  const { rows } = await sql<{ id: string }>`insert into messages (id, sender_orgnr, sender_reference, person_id, title, language, security_level, available_at, notifications, route, provider_orgnr, package_id, manifest_sha256, documents)
    select gen_random_uuid(), '974760673', ${run} || '-' || p, p, 'Skattemelding 2026', 'nb', 4, now() - interval '1 minute', '{"email":{},"sms":{},"repeatAfterDays":[0]}'::jsonb, 'DIGITAL', '984661185', gen_random_uuid(), 'x', '[]'::jsonb
    from unnest(${sql.val(ids)}::text[]) as x(p) returning id`.execute(db.kysely);
  return rows.map((r) => r.id);
}

const settings = (peers: { smtp: string; sms: string }, databaseUrl: string, redisUrl: string | undefined, prefix: string, dataDir: string): Record<string, string> => ({
  NODE_ENV: 'development',
  LOG_LEVEL: 'warn',
  DATA_DIR: dataDir,
  DATABASE_URL: databaseUrl,
  DATABASE_POOL_SIZE: '20',
  ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  QUEUE_PREFIX: prefix,
  SMTP_URL: peers.smtp,
  SMTP_REQUIRE_TLS: 'false',
  SMTP_POOL_SIZE: '10',
  SMS_GATEWAY_URL: peers.sms,
  NOTIFY_WINDOW_START: '00:00',
  NOTIFY_WINDOW_END: '24:00',
  NOTIFY_CONCURRENCY: '100',
  OUTBOX_POLL_MS: '100',
});

/** The notification service as its own process (`services/notification/main.ts`), ready when it answers /health/live. */
async function startServiceProcess(env: Record<string, string>): Promise<ChildProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, '../services/notification/main.ts')], {
    env: { ...process.env, ...env, NOTIFICATION_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`notification process exited with ${child.exitCode}`);
    const up = await fetch(`http://127.0.0.1:${port}/health/live`).then((r) => r.ok, () => false);
    if (up) return child;
    if (Date.now() > deadline) throw new Error('notification process not ready within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * DELIVERED events for LETTERS letters through the workers until every attempt is SENT. With
 * `processes` 0 the workers and the outbox relay run in this process; otherwise that many
 * notification service processes do the work (each with its relay), as a scaled-out deployment would.
 */
async function alertsEndToEnd(databaseUrl: string, redisUrl: string | undefined, dataDir: string, processes: number): Promise<{ perSecond: number; smtp: number; sms: number }> {
  const peers = await startPeers();
  const prefix = `bench_${randomBytes(4).toString('hex')}`;
  const env = settings(peers, databaseUrl, redisUrl, prefix, dataDir);
  const config = loadConfig(env);
  const db = connectDb(databaseUrl, { poolSize: config.DATABASE_POOL_SIZE });
  const queues = createQueueFactory({ redisUrl, databaseUrl, prefix });
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const ids = await seed(db, prefix);
    if (processes === 0) {
      const verifier = createTokenVerifier({ issuers: [await ensureDevIssuer(dataDir)], audience: 'postbud', clockToleranceS: 0, maxLifetimeS: 3600 });
      const deps = { config, db, queues, verifier, logger: createLogger('bench', 'warn') };
      const workers = await startWorkers(deps);
      const relay = startOutboxRelay({ db: db.kysely, pool: db.pool, queues, logger: deps.logger, pollMs: 100 });
      stops.push(() => workers.stop(), () => relay.stop());
    } else {
      const children = await Promise.all(Array.from({ length: processes }, () => startServiceProcess(env)));
      for (const child of children) stops.push(() => new Promise((resolve) => (child.exitCode !== null ? resolve(0) : (child.once('exit', resolve), child.kill('SIGTERM')))));
    }
    const started = performance.now();
    for (let i = 0; i < ids.length; i += 1000) {
      const slice = ids.slice(i, i + 1000);
      await db.kysely.transaction().execute((trx) => enqueue(trx, slice.map((messageId) => ({ queue: 'notification', name: 'delivery-event', data: { messageId, type: 'DELIVERED' } }))));
    }
    const target = ids.length * 2;
    for (;;) {
      const { rows } = await sql<{ n: string }>`select count(*) as n from notification_attempts a join messages m on m.id = a.message_id where m.sender_reference like ${prefix + '-%'} and a.state = 'SENT'`.execute(db.kysely);
      if (Number(rows[0]!.n) >= target) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    const received = (await (await fetch(peers.stats)).json()) as { mails: number; sms: number };
    return { perSecond: target / seconds, smtp: received.mails, sms: received.sms };
  } finally {
    for (const stop of stops) await stop();
    await queues.close();
    await db.close();
    peers.stop();
  }
}

const pg = await benchDatabase();
const redis = await startRedisServer();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-data-'));
try {
  const admin = connectDb(pg.url, { poolSize: 2 });
  await migrateToLatest(admin.kysely);
  await admin.close();
  const rows: Row[] = [];
  const runs = (process.env.BENCH_ALERT_RUNS ?? 'redis,postgres,redis:2').split(',');
  const raw = new Map<string, number>();
  for (const run of runs) {
    const [kind, procs] = run.split(':') as [QueueBackendKind, string | undefined];
    const processes = Number(procs ?? 0);
    const redisUrl = kind === 'redis' ? redis.url : undefined;
    if (!raw.has(kind)) raw.set(kind, await rawBullmq(kind, pg.url, redisUrl));
    const e2e = await alertsEndToEnd(pg.url, redisUrl, dataDir, processes);
    rows.push({
      backend: kind,
      workers: processes === 0 ? 'in bench process' : `${processes} service processes`,
      'alerts/s (e2e)': e2e.perSecond,
      'raw bullmq jobs/s': raw.get(kind)!,
      ratio: e2e.perSecond / raw.get(kind)!,
      target: kind === 'redis' ? 3000 : 500,
      'of target': e2e.perSecond / (kind === 'redis' ? 3000 : 500),
      alerts: LETTERS * 2,
      'smtp mails': e2e.smtp,
      'sms': e2e.sms,
    });
  }
  report('alerts', rows, { letters: LETTERS, rawJobs: RAW_JOBS, note: 'each letter asks for e-mail and SMS; e2e = DELIVERED event enqueued -> attempt SENT with NOTIFIED' });
} finally {
  rmSync(dataDir, { recursive: true, force: true });
  await redis.stop();
  await pg.stop();
}
process.exit(0);
