/**
 * Intake: POST /v1/messages with one 10 KB PDF through the whole ingestion stack (auth, multipart,
 * MIME check, routing, sealing, group commit, the outbox relay running), next to the baseline (a
 * bare Fastify route doing one insert of the same bytes) and the floor (bench/lib/floor-server.ts:
 * a bare route that parses and seals the same letter, then does that insert), in one run:
 *
 * - the ingestion service alone, in its own process: at most (32 connections), at 500/s, at its
 *   capacity and at 3x its capacity (load shedding: p99 of the accepted letters, 503s, and a
 *   count of the letters in the database against the 201s: nothing accepted is lost);
 * - the whole system as users start it (`postbud start`: all services in one process, its own
 *   embedded Postgres): at most and at 500/s;
 * - the RSS of an ingestion process taking one 50 MB letter, and 20 concurrent 10 MB letters.
 *
 * Per scenario: letters/s, p50/p99, the ratio to the baseline, CPU ms per letter (the service
 * process plus the Postgres processes, from /proc), database round trips (queries sent by pg
 * clients, counted by a preload in the service process) and write syscalls (socket writes to
 * Postgres and to clients) per letter, and the batch sizes the group commit saw.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { SCOPES } from '../shared/auth/scopes.js';
import { sql } from 'kysely';
import { connectDb } from '../shared/db/connect.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { projectRoot } from '../shared/runtime/project-root.js';
import { freePort } from '../tests/harness/free-port.js';
import { seedRegistry, SENDER } from '../tests/services/ingestion/fixtures.js';
import { BODY_10KB } from './baseline.js';
import { load, type LoadResult } from './lib/load.js';
import { loadRun } from './lib/open-load.js';
import { benchDatabase } from './lib/postgres.js';
import { cpuMs, postgresCpuMs, writeSyscalls } from './lib/proc.js';
import { CONTENT_TYPE, LETTER_TAIL, letterHead, PDF_10KB } from './lib/letter-body.js';
import { report, type Row } from './lib/report.js';
import { queriesSinceLast, stopChild, waitReady } from './lib/service-process.js';

const queryTotalSinceLast = async (child: ChildProcess) => (await queriesSinceLast(child)).reduce((n, [, c]) => n + c, 0);

const root = projectRoot();
const COUNT_QUERIES = path.join(root, 'bench/lib/count-queries.mjs');

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** One letter with a document of `size` bytes, generated while it streams (nothing held whole). */
function postLarge(url: string, token: string, size: number, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const piece = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(64 * 1024 - 9)]);
    async function* body() {
      yield letterHead();
      let sent = 0;
      while (sent < size) {
        const n = Math.min(piece.length, size - sent);
        yield piece.subarray(0, n);
        sent += n;
      }
      yield LETTER_TAIL;
    }
    const req = http.request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPE, 'idempotency-key': key } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    Readable.from(body()).pipe(req);
  });
}

/** A service process under measurement: its pid, its Postgres, its /metrics, its query counter. */
interface Target {
  child: ChildProcess;
  /** The ingestion base URL. */
  url: string;
  pgDataDir?: string;
  databaseUrl: string;
  stop(): Promise<void>;
}


const serviceEnv = (extra: Record<string, string>) => ({
  ...process.env,
  LOG_LEVEL: 'warn',
  RATE_LIMIT_PER_MINUTE: '10000000',
  // One token serves the whole run, longer than the default lifetime cap.
  AUTH_MAX_TOKEN_LIFETIME_S: '3600',
  DATABASE_POOL_SIZE: '20',
  // One client offers all the load here; the per-client bound is for real senders.
  INTAKE_UPLOADS_PER_CLIENT: '100000',
  ...extra,
});

/** BENCH_PROFILE_DIR: each service process writes a wall-clock `.cpuprofile` there when it stops (to find what holds its event loop). */
const profileFlags = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`, '--cpu-prof-interval=500'] : [];

function spawnCounted(script: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [...profileFlags, '--import', 'tsx', '--import', COUNT_QUERIES, path.join(root, script), ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The ingestion service as its own process (the load generator then has this one to itself). */
export async function startIngestion(databaseUrl: string, pgDataDir: string | undefined, dataDir: string, prefix: string): Promise<Target> {
  const port = await freePort();
  const child = spawnCounted('services/ingestion/main.ts', [], serviceEnv({ DATABASE_URL: databaseUrl, DATA_DIR: dataDir, INGESTION_PORT: String(port), QUEUE_PREFIX: prefix }));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child);
  return { child, url, databaseUrl, ...(pgDataDir ? { pgDataDir } : {}), stop: () => stopChild(child) };
}

/** `postbud start` as a user runs it: the four services in one process and its own embedded Postgres under DATA_DIR. */
async function startWholeSystem(): Promise<Target & { dataDir: string }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-start-'));
  chmodSync(dataDir, 0o755); // the embedded Postgres runs as its own user
  const [pgPort, registry, ingestion, storage, notification] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const child = spawnCounted(
    'scripts/cli.ts',
    ['start'],
    serviceEnv({
      DATA_DIR: dataDir,
      EMBEDDED_PG_PORT: String(pgPort),
      REGISTRY_PORT: String(registry),
      INGESTION_PORT: String(ingestion),
      STORAGE_PORT: String(storage),
      NOTIFICATION_PORT: String(notification),
      DATABASE_URL: '',
      REDIS_URL: '',
    }),
  );
  const url = `http://127.0.0.1:${ingestion}`;
  await waitReady(url, child);
  const databaseUrl = `postgres://postgres:postgres@127.0.0.1:${pgPort}/postgres`;
  const db = connectDb(databaseUrl, { poolSize: 1 });
  await seedRegistry(db.kysely); // idempotent: a reused BENCH_DATABASE_URL or a dev-seeded registry keeps its rows
  await db.close();
  return {
    child,
    url,
    databaseUrl,
    dataDir,
    pgDataDir: path.join(dataDir, 'pg'),
    async stop() {
      await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}



/** The intake's batch-size histogram: count and sum so far. */
async function batchStats(url: string): Promise<{ count: number; sum: number; buckets: Map<string, number> }> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text());
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const buckets = new Map<string, number>();
  for (const m of text.matchAll(/ingestion_intake_batch_letters_bucket\{le="([^"]+)"[^}]*\} (\d+)/g)) buckets.set(m[1]!, Number(m[2]));
  return { count: num(/ingestion_intake_batch_letters_count\{[^}]*\} (\d+)/), sum: num(/ingestion_intake_batch_letters_sum\{[^}]*\} (\d+)/), buckets };
}

/**
 * Autovacuum of the rows a scenario inserted would otherwise run, and be counted, in the next
 * one: before each scenario `settle` waits (at most 30 s) for autovacuum workers to finish. With
 * `checkpoint` it first writes out every dirty page: only after the baseline, whose ~30,000
 * 10 KB rows (350 MB) the checkpointer otherwise wrote during the first intake scenario (its
 * Postgres CPU per letter varied 2x between runs). Not before every scenario: right after a
 * checkpoint every page a scenario touches costs a full-page image in the WAL, which in one run
 * doubled the intake's Postgres CPU per letter against steady state (one checkpoint per 5 min).
 * The warm-up that follows takes those first touches.
 */
async function settle(databaseUrl: string, opts: { checkpoint?: boolean } = {}): Promise<void> {
  const db = connectDb(databaseUrl, { poolSize: 1 });
  try {
    if (opts.checkpoint) await sql`checkpoint`.execute(db.kysely);
    for (let i = 0; i < 300; i++) {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker'`.execute(db.kysely);
      if (r.rows[0]!.n === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
  } finally {
    await db.close();
  }
}

async function messageCount(databaseUrl: string): Promise<number> {
  const db = connectDb(databaseUrl, { poolSize: 1 });
  try {
    const r = await db.kysely.selectFrom('messages').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  } finally {
    await db.close();
  }
}

interface Measured {
  load: LoadResult;
  accepted: number;
  written: number;
  cpuMsPerLetter: number;
  serviceCpuMsPerLetter: number;
  pgCpuMsPerLetter: number;
  roundTripsPerLetter: number;
  writesPerLetter: number;
  batchMean: number;
  batchMax: string;
}

/** Runs `run` against `target` and accounts CPU, queries, write syscalls and batches per accepted letter. */
async function measure(target: Target, run: () => Promise<LoadResult>): Promise<Measured> {
  const pid = target.child.pid!;
  await queryTotalSinceLast(target.child);
  const [batches0, rows0] = await Promise.all([batchStats(target.url), messageCount(target.databaseUrl)]);
  await settle(target.databaseUrl);
  const cpu0 = cpuMs(pid);
  const pg0 = target.pgDataDir ? postgresCpuMs(target.pgDataDir) : 0;
  const w0 = writeSyscalls(pid);
  const result = await run();
  const cpu1 = cpuMs(pid);
  const pg1 = target.pgDataDir ? postgresCpuMs(target.pgDataDir) : 0;
  const w1 = writeSyscalls(pid);
  const queries = await queryTotalSinceLast(target.child);
  const [batches1, rows1] = await Promise.all([batchStats(target.url), messageCount(target.databaseUrl)]);
  const accepted = result.statuses[201] ?? 0;
  const per = (n: number) => (accepted > 0 ? n / accepted : 0);
  const grown = [...batches1.buckets].filter(([le, n]) => n > (batches0.buckets.get(le) ?? 0));
  // The largest batch lies in the first bucket that holds every new batch.
  const total = batches1.count - batches0.count;
  const max = grown.find(([le, n]) => n - (batches0.buckets.get(le) ?? 0) === total)?.[0] ?? '-';
  return {
    load: result,
    accepted,
    written: rows1 - rows0,
    cpuMsPerLetter: per(cpu1 - cpu0 + pg1 - pg0),
    serviceCpuMsPerLetter: per(cpu1 - cpu0),
    pgCpuMsPerLetter: per(pg1 - pg0),
    roundTripsPerLetter: per(queries),
    writesPerLetter: per(w1 - w0),
    batchMean: total > 0 ? (batches1.sum - batches0.sum) / total : 0,
    batchMax: max === '+Inf' ? '>256' : `<=${max}`,
  };
}

/** A bare server (bench/lib/<script>, prints its URL) as its own process, loaded with `request` at 32 connections. */
async function measureBareProcess(
  script: string,
  request: { body: Buffer; contentType: string },
  databaseUrl: string,
  pgDataDir: string | undefined,
  durationS: number,
): Promise<{ load: LoadResult; cpuMsPerLetter: number; writesPerLetter: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib', script)], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += String(d);
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', () => reject(new Error(`${script} exited`)));
    });
    const run = (seconds = durationS) => load({ url, method: 'POST', body: request.body, headers: { 'content-type': request.contentType }, durationS: seconds });
    await run(2); // warm-up
    const cpu0 = cpuMs(child.pid!) + (pgDataDir ? postgresCpuMs(pgDataDir) : 0);
    const w0 = writeSyscalls(child.pid!);
    const r = await run();
    const n = r.statuses[201] ?? 1;
    return { load: r, cpuMsPerLetter: (cpuMs(child.pid!) + (pgDataDir ? postgresCpuMs(pgDataDir) : 0) - cpu0) / n, writesPerLetter: (writeSyscalls(child.pid!) - w0) / n };
  } finally {
    child.kill('SIGTERM');
  }
}

async function measureRss(target: Target, token: string) {
  const child = target.child;
  const url = `${target.url}/v1/messages`;
  // Warm up: JIT, pools, hub key, a few letters of each size.
  for (let i = 0; i < 3; i++) await postLarge(url, token, 1024 * 1024, randomUUID());
  const run = async (fn: () => Promise<number[]>) => {
    await new Promise((r) => setTimeout(r, 500));
    const before = rssMb(child.pid!);
    let peak = before;
    const timer = setInterval(() => (peak = Math.max(peak, rssMb(child.pid!))), 20);
    const codes = await fn();
    clearInterval(timer);
    return { before, peak, growth: peak - before, codes };
  };
  const one = await run(async () => [await postLarge(url, token, 50_000_000, randomUUID())]);
  const twenty = await run(() => Promise.all(Array.from({ length: 20 }, () => postLarge(url, token, 10_000_000, randomUUID()))));
  return { one, twenty };
}

const statusText = (s: Record<number, number>) =>
  Object.entries(s)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');

function row(scenario: string, m: Measured, baselinePerSec: number, opts: { offered?: number } = {}): Row {
  return {
    scenario,
    ...(opts.offered ? { 'offered/s': opts.offered } : {}),
    'letters/s': Math.round(m.load.requestsPerSec * (m.accepted / Math.max(1, Object.values(m.load.statuses).reduce((a, b) => a + b, 0)))),
    'p50 ms': m.load.okP50Ms,
    'p99 ms': m.load.okP99Ms,
    'vs baseline': m.load.requestsPerSec > 0 ? (m.accepted / Math.max(1, Object.values(m.load.statuses).reduce((a, b) => a + b, 0))) * (m.load.requestsPerSec / baselinePerSec) : 0,
    'CPU ms/letter': m.cpuMsPerLetter,
    'svc+pg CPU ms': `${m.serviceCpuMsPerLetter.toFixed(2)}+${m.pgCpuMsPerLetter.toFixed(2)}`,
    'DB round trips/letter': m.roundTripsPerLetter,
    'write syscalls/letter': m.writesPerLetter,
    'batch mean': m.batchMean,
    'batch max': m.batchMax,
    answers: statusText(m.load.statuses),
    'lost (201 not in DB)': Math.max(0, m.accepted - m.written),
    ...('generatorCpuShare' in m.load ? { 'load generator CPU (cores)': m.load.generatorCpuShare as number } : {}),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
  const pg = await benchDatabase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-intake-'));
  const rows: Row[] = [];
  try {
    const db = connectDb(pg.url, { poolSize: 2 });
    await migrateToLatest(db.kysely);
    await seedRegistry(db.kysely); // idempotent: a reused BENCH_DATABASE_URL or a dev-seeded registry keeps its rows
    await db.close();

    const baseline = await measureBareProcess('baseline-server.ts', { body: BODY_10KB, contentType: 'application/octet-stream' }, pg.url, pg.dataDir, durationS);
    await settle(pg.url, { checkpoint: true });
    const body = Buffer.concat([letterHead(), PDF_10KB, LETTER_TAIL]);
    const floor = await measureBareProcess('floor-server.ts', { body, contentType: CONTENT_TYPE }, pg.url, pg.dataDir, durationS);
    await settle(pg.url, { checkpoint: true });
    const base = baseline.load.requestsPerSec;
    rows.push({
      scenario: 'baseline: fastify + 1 pg insert (10 KB), own process, 32 conns',
      'letters/s': Math.round(base),
      'p50 ms': baseline.load.p50Ms,
      'p99 ms': baseline.load.p99Ms,
      'vs baseline': 1,
      'CPU ms/letter': baseline.cpuMsPerLetter,
      'DB round trips/letter': 1,
      'write syscalls/letter': baseline.writesPerLetter,
      answers: statusText(baseline.load.statuses),
    });

    rows.push({
      scenario: 'floor: fastify + multipart + seal + 1 pg insert, own process',
      'letters/s': Math.round(floor.load.requestsPerSec),
      'p50 ms': floor.load.p50Ms,
      'p99 ms': floor.load.p99Ms,
      'vs baseline': floor.load.requestsPerSec / base,
      'CPU ms/letter': floor.cpuMsPerLetter,
      'DB round trips/letter': 1,
      'write syscalls/letter': floor.writesPerLetter,
      answers: statusText(floor.load.statuses),
    });

    const token = await issueDevToken(dataDir, { org: SENDER, scope: SCOPES.send, audience: 'postbud', ttlSeconds: 3600 });
    const intakeAt = (base: string) => (extra: { rate?: number; durationS?: number; connections?: number } = {}) =>
      loadRun({
        url: `${base}/v1/messages`,
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPE, 'idempotency-key': '[<id>]' },
        durationS,
        idReplacement: true,
        ...extra,
      });

    // BENCH_INTAKE=alone or =whole runs one half (e.g. while working on the service alone); =rss
    // only the RSS scenarios, on a fresh ingestion process.
    const parts = process.env.BENCH_INTAKE ?? 'alone,whole';
    const ingestion = parts.includes('alone') || parts.includes('rss') ? await startIngestion(pg.url, pg.dataDir, dataDir, 'bench_intake') : undefined;
    if (ingestion) try {
      const intake = intakeAt(ingestion.url);
      if (parts.includes('alone')) {
      await intake({ durationS: 3 }); // warm-up
      const max = await measure(ingestion, () => intake());
      rows.push(row('ingestion alone: max (32 conns)', max, base));
      const at500 = await measure(ingestion, () => intake({ rate: 500, connections: 64 }));
      rows.push(row('ingestion alone: 500/s offered', at500, base, { offered: 500 }));
      // Load shedding: the p99 of accepted letters at 3x capacity against its value at capacity.
      const capacity = Math.max(50, Math.round(max.load.requestsPerSec / 10) * 10);
      const atCapacity = await measure(ingestion, () => intake({ rate: capacity, connections: 128 }));
      rows.push(row('ingestion alone: at capacity', atCapacity, base, { offered: capacity }));
      const over = await measure(ingestion, () => intake({ rate: capacity * 3, connections: 384 }));
      rows.push(row('ingestion alone: 3x capacity (shedding)', over, base, { offered: capacity * 3 }));
      }
      const rss = await measureRss(ingestion, token);
      rows.push({ scenario: 'RSS: one 50 MB letter', 'RSS growth MB': Math.round(rss.one.growth), 'RSS before MB': Math.round(rss.one.before), answers: rss.one.codes.join(',') });
      rows.push({
        scenario: 'RSS: 20 concurrent 10 MB letters',
        'RSS growth MB': Math.round(rss.twenty.growth),
        'RSS before MB': Math.round(rss.twenty.before),
        answers: [...new Set(rss.twenty.codes)].join(','),
      });
    } finally {
      await ingestion.stop();
    }

    const whole = parts.includes('whole') ? await startWholeSystem() : undefined;
    if (whole) try {
      const token2 = await issueDevToken(whole.dataDir, { org: SENDER, scope: SCOPES.send, audience: 'postbud', ttlSeconds: 3600 });
      const intake = (extra: { rate?: number; connections?: number; durationS?: number } = {}) =>
        loadRun({
          url: `${whole.url}/v1/messages`,
          method: 'POST',
          body,
          headers: { authorization: `Bearer ${token2}`, 'content-type': CONTENT_TYPE, 'idempotency-key': '[<id>]' },
          durationS,
          idReplacement: true,
          ...extra,
        });
      await intake({ durationS: 3 }); // warm-up
      rows.push(row('postbud start (all services, embedded pg): max (32 conns)', await measure(whole, () => intake()), base));
      rows.push(row('postbud start: 500/s offered', await measure(whole, () => intake({ rate: 500, connections: 64 })), base, { offered: 500 }));
    } finally {
      await whole.stop();
    }
  } finally {
    report('intake', rows, {
      durationS,
      loadavg: os.loadavg(),
      note: 'letters/s, p50/p99 and ratio count 201 answers only; CPU is service process + its Postgres (postmaster and backends) from /proc, 10 ms ticks',
      targets: { lettersPerSec: 1500, p99MsAt500: 50, cpuMsPerLetter: 0.6, rssGrowthMbFor50Mb: 64, ratioToBaseline: 0.5, acceptedP99At3xCapacity: '< 2x p99 at capacity' },
    });
    await pg.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
