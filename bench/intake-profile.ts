/**
 * Tooling for bench/intake.ts: starts Postgres, seeds, runs the ingestion service as its own
 * process (optionally with --cpu-prof and a query counter), loads it with autocannon from here.
 *   PROFILE=1  writes a .cpuprofile under bench/results/
 *   COUNT=1    prints queries per letter
 *   PERF=N     passes --perf-basic-prof-only-functions, prints the service pid and waits N s
 *              after the warm-up (time to attach `perf record -p PID`)
 *   RATE=N     the measured run offers N letters/s open-loop (bench/lib/open-load.ts) instead of
 *              32 connections at full speed, over CONNS sockets (384, as the bench at 3x capacity):
 *              above capacity, the refusals' cost is in the profile
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { SCOPES } from '../shared/auth/scopes.js';
import { connectDb } from '../shared/db/connect.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { projectRoot } from '../shared/runtime/project-root.js';
import { freePort } from '../tests/harness/free-port.js';
import { seedRegistry, SENDER } from '../tests/services/ingestion/fixtures.js';
import { CONTENT_TYPE, LETTER_10KB } from './lib/letter-body.js';
import { load } from './lib/load.js';
import { loadRun } from './lib/open-load.js';
import { benchDatabase } from './lib/postgres.js';

const body = LETTER_10KB;

const pg = await benchDatabase();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-prof-'));
const db = connectDb(pg.url, { poolSize: 2 });
await migrateToLatest(db.kysely);
await seedRegistry(db.kysely); // idempotent: a reused BENCH_DATABASE_URL or a dev-seeded registry keeps its rows
if (process.env.NO_NOTIFY) await db.pool.query('alter table outbox disable trigger outbox_notify');
const port = await freePort();
const root = projectRoot();
const args = ['--import', 'tsx'];
if (process.env.COUNT) args.push('--import', path.join(root, 'bench/lib/count-queries.mjs'));
if (process.env.PROFILE) args.push('--cpu-prof', '--cpu-prof-dir', path.join(root, 'bench/results'));
if (process.env.PERF) args.push('--perf-basic-prof-only-functions');
args.push(path.join(root, 'services/ingestion/main.ts'));
let stderr = '';
const child = spawn(process.execPath, args, {
  cwd: root,
  env: { ...process.env, DATABASE_URL: pg.url, DATA_DIR: dataDir, INGESTION_PORT: String(port), LOG_LEVEL: 'warn', QUEUE_PREFIX: 'bench_prof', RATE_LIMIT_PER_MINUTE: '10000000', AUTH_MAX_TOKEN_LIFETIME_S: '3600', DATABASE_POOL_SIZE: '20', INTAKE_UPLOADS_PER_CLIENT: '100000' },
  stdio: ['ignore', 'ignore', 'pipe'],
});
child.stderr!.on('data', (d) => (stderr += String(d)));
for (let i = 0; ; i++) {
  if (await fetch(`http://127.0.0.1:${port}/health/ready`).then((r) => r.ok, () => false)) break;
  if (i > 300) throw new Error('ingestion did not start');
  await new Promise((r) => setTimeout(r, 100));
}
const token = await issueDevToken(dataDir, { org: SENDER, scope: SCOPES.send, audience: 'postbud', ttlSeconds: 3600 });
const request = { url: `http://127.0.0.1:${port}/v1/messages`, method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPE, 'idempotency-key': '[<id>]' }, idReplacement: true } as const;
const warm = (durationS: number) => load({ ...request, durationS, connections: 32 });
const run = (durationS: number) => (process.env.RATE ? loadRun({ ...request, durationS, rate: Number(process.env.RATE), connections: Number(process.env.CONNS ?? 384) }) : warm(durationS));
await warm(3);
if (process.env.PERF) console.log('SERVICE_PID', child.pid);
if (process.env.PERF) await new Promise((r) => setTimeout(r, Number(process.env.PERF) * 1000));
if (process.env.COUNT) child.kill('SIGWINCH');
const before = Number((await db.kysely.selectFrom('messages').select((e) => e.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
const waits = new Map<string, number>();
const sampler = process.env.WAITS
  ? setInterval(() => {
      void db.pool
        .query(`select coalesce(wait_event_type, 'cpu') || ':' || coalesce(wait_event, '-') || ':' || state || ':' || left(regexp_replace(query, '\\s+', ' ', 'g'), 50) as w from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and state <> 'idle'`)
        .then((res) => res.rows.forEach((row: { w: string }) => waits.set(row.w, (waits.get(row.w) ?? 0) + 1)), () => undefined);
    }, 50)
  : undefined;
const r = await run(Number(process.env.BENCH_DURATION_S ?? 10));
if (sampler) {
  clearInterval(sampler);
  for (const [w, n] of [...waits].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(String(n).padStart(6), w);
}
const after = Number((await db.kysely.selectFrom('messages').select((e) => e.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
console.log(JSON.stringify(r), 'letters', after - before);
if (process.env.COUNT) {
  child.kill('SIGWINCH');
  await new Promise((res) => setTimeout(res, 500));
  const m = [...stderr.matchAll(/QUERYCOUNTS (.*)/g)].at(-1);
  const rows = JSON.parse(m![1]!) as [string, number][];
  const n = after - before;
  let total = 0;
  for (const [q, c] of rows) {
    total += c;
    console.log((c / n).toFixed(2).padStart(6), q);
  }
  console.log('total per letter', (total / n).toFixed(2));
}
child.kill('SIGINT');
await new Promise((res) => child.once('exit', res));
await db.close();
await pg.stop();
