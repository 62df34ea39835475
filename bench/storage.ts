/**
 * Storage figures, each next to the floor it is compared with:
 *  - sealing MB/s (ZIP -> AES-256-CBC -> Postgres chunks) vs raw node:crypto AES-256-CBC over the same bytes;
 *  - provider pulls/s of a 10 KB and a 5 MB package (auth, lookups, CMS header + chunks from Postgres)
 *    vs a plain Fastify route serving the same CMS bytes from memory;
 *  - RSS growth while sealing a 50 MB document;
 *  - the pull cycle as a provider runs it, the storage service in its own process: thousands of
 *    10 KB deliveries seeded set-based (the intake's statement), then BENCH_PULL_WORKERS
 *    workers each looping list (leasing, BENCH_PULL_PAGE per page), download every listed
 *    package, acknowledge the page in one batch call. Packages/s, p50/p99 of a cycle and of a
 *    download, the ratio to a plain Fastify route serving the same bytes in its own process
 *    loaded by the same client at the same concurrency, CPU ms per package (service process +
 *    Postgres processes, from /proc) and DB round trips per package (lib/count-queries.mjs).
 *
 * BENCH_STORAGE picks parts (default `seal,pull,cycle`); BENCH_PULL_PROFILE=1 runs the service
 * under --cpu-prof (a .cpuprofile in bench/results/), BENCH_PULL_PERF=1 with
 * --perf-basic-prof-only-functions and prints its pid when the measurement starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { sql } from 'kysely';
import forge from 'node-forge';
import { generateKeyPairSync } from 'node:crypto';
import { service } from '../services/storage/app.js';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { loadConfig } from '../shared/config/config.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { createServiceDeps } from '../shared/runtime/service-deps.js';
import { storageContext } from '../shared/storage/context.js';
import { createDelivery, newDeliveriesCtes, type CreateDelivery } from '../shared/storage/deliveries.js';
import { sealPackage, sealPackageInMemory } from '../shared/storage/packages.js';
import type { StorageContext } from '../shared/storage/context.js';
import type { Database } from '../shared/db/database.js';
import type { Kysely } from 'kysely';
import { projectRoot } from '../shared/runtime/project-root.js';
import { freePort } from '../tests/harness/free-port.js';
import { benchDatabase } from './lib/postgres.js';
import { KeepAlive } from './lib/keep-alive.js';
import { load } from './lib/load.js';
import { cpuMs, postgresCpuMs } from './lib/proc.js';
import { report, type Row } from './lib/report.js';
import { queriesSinceLast, stopChild, waitReady } from './lib/service-process.js';
import { manifestInput } from '../tests/services/storage/fixtures.js';

const MB = 1024 * 1024;
const PROVIDER = '984661185';
const SOURCE = randomBytes(MB); // incompressible, like the PDFs letters mostly are

/** A letter's manifest for a bench package (a fresh id each time). */
const benchManifest = (sender: string) => manifestInput({ sender: { orgnr: sender }, title: 'Bench', openReceipt: false });

function bytes(size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return this.push(null);
      const n = Math.min(64 * 1024, size - sent);
      this.push(SOURCE.subarray(sent % MB, (sent % MB) + n));
      sent += n;
    },
  });
}

function rawAesMBps(size: number): number {
  const c = createCipheriv('aes-256-cbc', randomBytes(32), randomBytes(16));
  const start = process.hrtime.bigint();
  for (let sent = 0; sent < size; sent += 64 * 1024) c.update(SOURCE.subarray(sent % MB, (sent % MB) + 64 * 1024));
  c.final();
  return size / MB / (Number(process.hrtime.bigint() - start) / 1e9);
}

function providerCertDer(): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000 * 365);
  cert.setSubject([{ name: 'commonName', value: 'bench' }]);
  cert.setIssuer([{ name: 'commonName', value: 'bench' }]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), forge.md.sha256.create());
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
}

const root = projectRoot();
const PULL_PROVIDER = '922020175'; // the pull cycle's own provider: the rows above leave unacknowledged deliveries
const SENDER = '974760673';

/**
 * `n` deliveries of a 10 KB package each for `provider`, as intake writes them: sealed in memory
 * (deferred write), then packages, chunks, deliveries and SEALED events by one set-based
 * statement per `batch` deliveries (newDeliveriesCtes, the group commit's statement).
 */
async function seedDeliveries(ctx: StorageContext, db: Kysely<Database>, provider: string, n: number, batch = 500): Promise<void> {
  const doc = randomBytes(10 * 1024);
  for (let done = 0; done < n; done += batch) {
    const inputs: CreateDelivery[] = [];
    for (let i = 0; i < Math.min(batch, n - done); i++) {
      const sealed = await sealPackageInMemory(ctx, {
        manifest: benchManifest(SENDER),
        documents: [{ name: 'letter.pdf', mime: 'application/pdf', data: doc }],
        deferWrite: true,
      });
      inputs.push({
        messageId: sealed.manifest.messageId,
        senderOrgnr: SENDER,
        personId: '01017012345',
        route: 'DIGITAL',
        providerOrgnr: provider,
        mailboxAddress: 'bench#1',
        title: 'Bench',
        securityLevel: 4,
        availableAt: new Date(),
        sealed,
        newMessage: true,
      });
    }
    const { ctes } = newDeliveriesCtes(inputs);
    await sql`with ${ctes} select 1`.execute(db);
  }
}

const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

interface CycleStats {
  packages: number;
  cycles: number;
  cycleMs: number[];
  listMs: number[];
  downloadMs: number[];
  ackMs: number[];
  /** Listings that returned nothing (the seeded deliveries ran out: the figures are then too low). */
  dry: number;
  errors: number;
  /** Downloads whose bytes did not hash to the listing's fingerprint. */
  mismatched: number;
  statuses: Record<string, number>;
}

const newStats = (): CycleStats => ({ packages: 0, cycles: 0, cycleMs: [], listMs: [], downloadMs: [], ackMs: [], dry: 0, errors: 0, mismatched: 0, statuses: {} });

/** One provider worker: list (leasing `page`), download each listed package, acknowledge the page in one call; until `until`. */
async function providerWorker(base: string, token: string, page: number, until: number, stats: CycleStats): Promise<void> {
  const conn = new KeepAlive(base);
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const count = (what: string, status: number) => (stats.statuses[`${what} ${status}`] = (stats.statuses[`${what} ${status}`] ?? 0) + 1);
  try {
    while (performance.now() < until) {
      const t0 = performance.now();
      const list = await conn.request('GET', `/v1/deliveries?limit=${page}`, auth);
      const t1 = performance.now();
      if (list.status !== 200) {
        count('list', list.status);
        stats.errors++;
        continue;
      }
      const { deliveries } = JSON.parse(list.body.toString()) as { deliveries: { id: string; size: number; fingerprint: string }[] };
      if (deliveries.length === 0) {
        stats.dry++;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      stats.listMs.push(t1 - t0);
      const ids: string[] = [];
      for (const d of deliveries) {
        const s = performance.now();
        const pkg = await conn.request('GET', `/v1/deliveries/${d.id}/package`, auth);
        stats.downloadMs.push(performance.now() - s);
        if (pkg.status !== 200 || pkg.body.length !== d.size) {
          count('download', pkg.status);
          stats.errors++;
          continue;
        }
        if (createHash('sha256').update(pkg.body).digest('hex') !== d.fingerprint) stats.mismatched++;
        ids.push(d.id);
      }
      const t2 = performance.now();
      const ack = await conn.request('POST', '/v1/deliveries/ack', json, Buffer.from(JSON.stringify({ ids })));
      const t3 = performance.now();
      if (ack.status !== 200) {
        count('ack', ack.status);
        stats.errors++;
        continue;
      }
      const { results } = JSON.parse(ack.body.toString()) as { results: { ok: boolean }[] };
      const ok = results.filter((r) => r.ok).length;
      stats.errors += results.length - ok;
      stats.packages += ok;
      stats.cycles++;
      stats.ackMs.push(t3 - t2);
      stats.cycleMs.push(t3 - t0);
    }
  } finally {
    conn.close();
  }
}

/** `workers` sequential clients looping GET `url` until `until`: the plain route's requests/s at the same concurrency, same client. */
async function plainWorker(url: string, until: number, times: number[]): Promise<number> {
  const u = new URL(url);
  const conn = new KeepAlive(url);
  let errors = 0;
  try {
    while (performance.now() < until) {
      const s = performance.now();
      const r = await conn.request('GET', u.pathname);
      times.push(performance.now() - s);
      if (r.status !== 200) errors++;
    }
  } finally {
    conn.close();
  }
  return errors;
}



/** The storage service as its own process, with the query counter preloaded (and --cpu-prof with BENCH_PULL_PROFILE=1). */
async function startStorage(databaseUrl: string, dataDir: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const port = await freePort();
  const args = ['--import', 'tsx', '--import', path.join(root, 'bench/lib/count-queries.mjs')];
  if (process.env.BENCH_PULL_PROFILE) args.push('--cpu-prof', '--cpu-prof-dir', path.join(root, 'bench/results'));
  // BENCH_PULL_PERF=1: named JavaScript frames for `perf record -g -p <pid>` (on-CPU samples; the .cpuprofile counts wall time).
  if (process.env.BENCH_PULL_PERF) args.push('--perf-basic-prof-only-functions');
  const child = spawn(process.execPath, [...args, path.join(root, 'services/storage/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      STORAGE_PORT: String(port),
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_MINUTE: '10000000',
      AUTH_MAX_TOKEN_LIFETIME_S: '3600',
      DATABASE_POOL_SIZE: '20',
      QUEUE_PREFIX: 'bench_storage',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + String(d)).slice(-200_000)));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, child);
  return { child, url, stderr: () => err };
}


/**
 * Before a measured cycle: the seeded rows written out (checkpoint, so the checkpointer does not
 * write them during the measurement) and autovacuum of the last scenario's rows finished (at
 * most 30 s), so each scenario's Postgres CPU is its own. The warm-up then takes the first
 * touches of pages after the checkpoint (full-page images). As bench/intake.ts does.
 */
async function settle(db: Kysely<Database>): Promise<void> {
  await sql`checkpoint`.execute(db);
  for (let i = 0; i < 300; i++) {
    const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker'`.execute(db);
    if (r.rows[0]!.n === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** The floor's route process (lib/pull-floor-server.ts); its URL. */
async function startFloor(databaseUrl: string, dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib/pull-floor-server.ts')], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, DATA_DIR: dataDir, AUTH_MAX_TOKEN_LIFETIME_S: '3600' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', () => reject(new Error('floor server exited')));
  });
  return { child, url };
}

/**
 * The floor's rows: `n` ready deliveries for `provider` in its own table, each holding `body`
 * (the CMS bytes the service sends) stored out of line like package chunks.
 */
async function seedFloor(db: Kysely<Database>, provider: string, body: Buffer, n: number): Promise<void> {
  await sql`drop table if exists bench_pull_floor`.execute(db);
  await sql`create table bench_pull_floor (id uuid primary key default gen_random_uuid(), provider_orgnr text not null, state text not null,
              leased_until timestamptz, acked_at timestamptz, created_at timestamptz not null, body bytea not null, fingerprint bytea not null)`.execute(db);
  await sql`alter table bench_pull_floor alter column body set storage external`.execute(db);
  await sql`create index on bench_pull_floor (provider_orgnr, created_at, id) where state = 'READY'`.execute(db);
  const fingerprint = createHash('sha256').update(body).digest();
  for (let done = 0; done < n; done += 5000) {
    await sql`insert into bench_pull_floor (provider_orgnr, state, created_at, body, fingerprint)
                select ${provider}, 'READY', now() + (${done} + g) * interval '1 microsecond', ${body}, ${fingerprint}
                  from generate_series(1, ${Math.min(5000, n - done)}) g`.execute(db);
  }
  await sql`vacuum analyze bench_pull_floor`.execute(db);
}

/** The plain route in its own process serving `body`; its URL. */
async function startPlain(body: Buffer, dir: string): Promise<{ child: ChildProcess; url: string }> {
  const file = path.join(dir, 'plain-body.bin');
  writeFileSync(file, body);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib/plain-server.ts')], {
    cwd: root,
    env: { ...process.env, PLAIN_BODY_FILE: file, PLAIN_CONTENT_TYPE: 'application/pkcs7-mime' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (out.includes('\n')) resolve(`${out.trim()}/p`);
    });
    child.once('exit', () => reject(new Error('plain server exited')));
  });
  return { child, url };
}

/**
 * The pull cycle scenario: seeds, starts the storage service in its own process, warms up,
 * measures `durationS` of `workers` provider workers, then the plain route with the same
 * client and concurrency. Rows for the table and facts for the JSON.
 */
async function pullCycle(opts: { pg: { url: string; dataDir?: string }; dataDir: string; ctx: StorageContext; db: Kysely<Database>; durationS: number }) {
  const workers = Number(process.env.BENCH_PULL_WORKERS ?? 16);
  const page = Number(process.env.BENCH_PULL_PAGE ?? 50);
  const warmupS = 3;
  const seeded = Number(process.env.BENCH_PULL_DELIVERIES ?? Math.max(5000, Math.round((opts.durationS + warmupS) * 2500)));
  await sql`insert into providers (orgnr, name, kind, certificate) values (${PULL_PROVIDER}, 'Bench pull', 'digital', ${providerCertDer()}) on conflict (orgnr) do nothing`.execute(opts.db);
  const s0 = performance.now();
  await seedDeliveries(opts.ctx, opts.db, PULL_PROVIDER, seeded);
  const seedSeconds = (performance.now() - s0) / 1000;
  // Statistics as autovacuum would have them by now (the planner otherwise joins a freshly seeded packages table by a sequential scan).
  for (const table of ['deliveries', 'packages', 'package_chunks', 'message_events']) await sql`vacuum analyze ${sql.table(table)}`.execute(opts.db);
  await settle(opts.db);
  const storage = await startStorage(opts.pg.url, opts.dataDir);
  const pid = storage.child.pid!;
  const pgCpu = () => (opts.pg.dataDir ? postgresCpuMs(opts.pg.dataDir) : 0);
  try {
    const token = await issueDevToken(opts.dataDir, { org: PULL_PROVIDER, scope: 'postbud:provider', audience: 'postbud', ttlSeconds: 3600 });
    const run = async (seconds: number) => {
      const stats = newStats();
      const until = performance.now() + seconds * 1000;
      const start = performance.now();
      await Promise.all(Array.from({ length: workers }, () => providerWorker(storage.url, token, page, until, stats)));
      return { stats, elapsedS: (performance.now() - start) / 1000 };
    };
    await run(warmupS);
    await queriesSinceLast(storage.child);
    if (process.env.BENCH_PULL_PERF) process.stdout.write(`storage service pid ${pid}: measuring for ${opts.durationS} s\n`);
    const load0 = os.loadavg();
    const cpu0 = cpuMs(pid);
    const pg0 = pgCpu();
    const gen0 = process.cpuUsage();
    // BENCH_PULL_WAITS=1: what the service's Postgres backends are doing, sampled every 50 ms.
    const waits = new Map<string, number>();
    const sampler = process.env.BENCH_PULL_WAITS
      ? setInterval(() => {
          void sql<{ w: string }>`select coalesce(wait_event_type, 'cpu') || ':' || coalesce(wait_event, '-') || ':' || left(regexp_replace(query, '\\s+', ' ', 'g'), 90) as w
              from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and state = 'active'`
            .execute(opts.db)
            .then((r) => r.rows.forEach(({ w }) => waits.set(w, (waits.get(w) ?? 0) + 1)), () => undefined);
        }, 50)
      : undefined;
    const { stats, elapsedS } = await run(opts.durationS);
    if (sampler) clearInterval(sampler);
    const gen = process.cpuUsage(gen0);
    for (const [w, c] of [...waits].sort((a, b) => b[1] - a[1]).slice(0, 30)) process.stdout.write(`${String(c).padStart(6)} ${w}\n`);
    const svcMs = cpuMs(pid) - cpu0;
    const pgMs = pgCpu() - pg0;
    const queries = await queriesSinceLast(storage.child);
    const n = Math.max(1, stats.packages);
    const totalQueries = queries.reduce((a, [, c]) => a + c, 0);

    // The same bytes from a plain route: one 10 KB package's CMS as the service serves it.
    const probe = await seedOne(opts, token, storage.url);
    await stopChild(storage.child);

    // The floor: the same cycle against bare routes over the same Postgres (lib/pull-floor-server.ts).
    const floorSeeded = Number(process.env.BENCH_PULL_FLOOR_DELIVERIES ?? Math.round((opts.durationS + warmupS) * 7000));
    await seedFloor(opts.db, PULL_PROVIDER, probe, floorSeeded);
    await settle(opts.db);
    const floor = await startFloor(opts.pg.url, opts.dataDir);
    let floorRow: Row;
    let floorFacts: Record<string, unknown>;
    try {
      const floorRun = async (seconds: number) => {
        const st = newStats();
        const until = performance.now() + seconds * 1000;
        const start = performance.now();
        await Promise.all(Array.from({ length: workers }, () => providerWorker(floor.url, token, page, until, st)));
        return { stats: st, elapsedS: (performance.now() - start) / 1000 };
      };
      await floorRun(warmupS);
      const f0 = cpuMs(floor.child.pid!);
      const fpg0 = pgCpu();
      const { stats: fs, elapsedS: fElapsed } = await floorRun(opts.durationS);
      const fSvc = cpuMs(floor.child.pid!) - f0;
      const fPg = pgCpu() - fpg0;
      const fn = Math.max(1, fs.packages);
      floorRow = {
        scenario: `floor: token + 1 query per list/download/ack, own table (${workers} workers, same client)`,
        'packages/s': fs.packages / fElapsed,
        'cycle p50 ms': percentile(fs.cycleMs, 50),
        'cycle p99 ms': percentile(fs.cycleMs, 99),
        'download p50 ms': percentile(fs.downloadMs, 50),
        'download p99 ms': percentile(fs.downloadMs, 99),
        'CPU ms/package': (fSvc + fPg) / fn,
        'svc+pg CPU ms': `${(fSvc / fn).toFixed(3)}+${(fPg / fn).toFixed(3)}`,
        errors: fs.errors + fs.mismatched,
        'dry listings': fs.dry,
      };
      floorFacts = {
        seeded: floorSeeded,
        packages: fs.packages,
        elapsedS: fElapsed,
        listMs: { p50: percentile(fs.listMs, 50), p99: percentile(fs.listMs, 99) },
        ackMs: { p50: percentile(fs.ackMs, 50), p99: percentile(fs.ackMs, 99) },
        statuses: fs.statuses,
        cpuMsPerPackage: { process: fSvc / fn, pg: fPg / fn },
      };
    } finally {
      await stopChild(floor.child);
    }
    await sql`drop table if exists bench_pull_floor`.execute(opts.db);
    const plain = await startPlain(probe, opts.dataDir);
    let plainRow: Row;
    let plainPerSec: number;
    try {
      const warm = performance.now() + 2000;
      await Promise.all(Array.from({ length: workers }, () => plainWorker(plain.url, warm, [])));
      const times: number[] = [];
      const c0 = cpuMs(plain.child.pid!);
      const start = performance.now();
      const until = start + opts.durationS * 1000;
      const errs = (await Promise.all(Array.from({ length: workers }, () => plainWorker(plain.url, until, times)))).reduce((a, b) => a + b, 0);
      const secs = (performance.now() - start) / 1000;
      plainPerSec = times.length / secs;
      plainRow = {
        scenario: `plain route, same ${probe.length} B, own process (${workers} conns, same client)`,
        'req/s': plainPerSec,
        'p50 ms': percentile(times, 50),
        'p99 ms': percentile(times, 99),
        'CPU ms/package': (cpuMs(plain.child.pid!) - c0) / Math.max(1, times.length),
        errors: errs,
      };
    } finally {
      await stopChild(plain.child);
    }
    const perSec = stats.packages / elapsedS;
    const cycleRow: Row = {
      scenario: `pull cycle 10 KB: list ${page} + download each + batch ack (${workers} workers, own process)`,
      'packages/s': perSec,
      'cycle p50 ms': percentile(stats.cycleMs, 50),
      'cycle p99 ms': percentile(stats.cycleMs, 99),
      'download p50 ms': percentile(stats.downloadMs, 50),
      'download p99 ms': percentile(stats.downloadMs, 99),
      ratio: perSec / plainPerSec,
      compared: `plain route ${plainPerSec.toFixed(0)} req/s`,
      'CPU ms/package': (svcMs + pgMs) / n,
      'svc+pg CPU ms': `${(svcMs / n).toFixed(3)}+${(pgMs / n).toFixed(3)}`,
      'DB round trips/package': totalQueries / n,
      'load generator CPU (cores)': (gen.user + gen.system) / 1000 / (elapsedS * 1000),
      errors: stats.errors + stats.mismatched,
      'dry listings': stats.dry,
    };
    floorRow.ratio = (floorRow['packages/s'] as number) / plainPerSec;
    floorRow.compared = `plain route ${plainPerSec.toFixed(0)} req/s`;
    return {
      rows: [cycleRow, floorRow, plainRow],
      facts: {
        floor: floorFacts,
        workers,
        page,
        seeded,
        seedSeconds,
        packages: stats.packages,
        cycles: stats.cycles,
        elapsedS,
        listMs: { p50: percentile(stats.listMs, 50), p99: percentile(stats.listMs, 99) },
        ackMs: { p50: percentile(stats.ackMs, 50), p99: percentile(stats.ackMs, 99) },
        statuses: stats.statuses,
        mismatched: stats.mismatched,
        loadavgBefore: load0,
        loadavgAfter: os.loadavg(),
        serviceCpuMsPerPackage: svcMs / n,
        pgCpuMsPerPackage: pgMs / n,
        queriesPerPackage: queries.map(([q, c]) => [Math.round((c / n) * 1000) / 1000, q]),
      },
    };
  } finally {
    await stopChild(storage.child);
  }
}

/** One more delivery, pulled once through the service: the CMS bytes the plain route serves. */
async function seedOne(opts: { ctx: StorageContext; db: Kysely<Database> }, token: string, base: string): Promise<Buffer> {
  await seedDeliveries(opts.ctx, opts.db, PULL_PROVIDER, 1);
  const auth = { authorization: `Bearer ${token}` };
  const { deliveries } = (await (await fetch(`${base}/v1/deliveries?limit=1`, { headers: auth })).json()) as { deliveries: { id: string }[] };
  return Buffer.from(await (await fetch(`${base}/v1/deliveries/${deliveries[0]!.id}/package`, { headers: auth })).arrayBuffer());
}

const pg = await benchDatabase();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-data-'));
const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
try {
  const config = loadConfig({ DATABASE_URL: pg.url, DATA_DIR: dataDir, LOG_LEVEL: 'silent', RATE_LIMIT_PER_MINUTE: '10000000', AUTH_MAX_TOKEN_LIFETIME_S: '3600', NODE_ENV: 'test' });
  const deps = await createServiceDeps('storage', config);
  await migrateToLatest(deps.db.kysely);
  const ctx = storageContext(deps);
  const db = deps.db.kysely;
  await sql`insert into providers (orgnr, name, kind, certificate) values (${PROVIDER}, 'Bench', 'digital', ${providerCertDer()}) on conflict (orgnr) do nothing`.execute(db);

  const seal = (size: number) =>
    sealPackage(ctx, {
      manifest: benchManifest('974760673'),
      documents: [{ name: 'letter.pdf', mime: 'application/pdf', stream: bytes(size) }],
    });
  await seal(10 * 1024); // warm-up: hub key, connections
  const parts = process.env.BENCH_STORAGE ?? 'seal,pull,cycle';
  const rows: Row[] = [];
  const notes: Record<string, unknown> = { durationS, loadavg: os.loadavg() };

  if (parts.includes('seal')) {
    // RSS while sealing 50 MB (sampled every 10 ms).
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 10);
    const t0 = process.hrtime.bigint();
    await seal(50 * MB);
    const sealSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    clearInterval(sampler);
    const sealMBps = 50 / sealSeconds;
    const aesMBps = rawAesMBps(50 * MB);
    const rssGrowthMb = (rssPeak - rssBefore) / MB;
    rows.push(
      { scenario: 'seal 50 MB (zip+AES-CBC+pg chunks)', 'MB/s': sealMBps, ratio: sealMBps / aesMBps, compared: `raw AES-256-CBC ${aesMBps.toFixed(0)} MB/s` },
      { scenario: 'RSS growth sealing 50 MB', MB: rssGrowthMb },
    );
    Object.assign(notes, { sealSeconds, aesMBps, rssBeforeMb: rssBefore / MB, rssPeakMb: rssPeak / MB });
  }

  if (parts.includes('pull')) {
    // One package downloaded over and over, the service in the bench process (autocannon).
    const app = await service.buildApp(deps);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const token = await issueDevToken(dataDir, { org: PROVIDER, scope: 'postbud:provider', audience: config.AUTH_AUDIENCE, ttlSeconds: 3600 });
    const headers = { authorization: `Bearer ${token}` };
    for (const [label, size] of [
      ['10 KB', 10 * 1024],
      ['5 MB', 5 * MB],
    ] as const) {
      const sealed = await seal(size);
      const { id } = await db.transaction().execute((trx) =>
        createDelivery(trx, ctx, {
          messageId: sealed.manifest.messageId,
          senderOrgnr: '974760673',
          personId: '01017012345',
          route: 'DIGITAL',
          providerOrgnr: PROVIDER,
          mailboxAddress: 'bench#1',
          title: 'Bench',
          securityLevel: 4,
          availableAt: new Date(),
          sealed,
        }),
      );
      const url = `${base}/v1/deliveries/${id}/package`;
      const body = Buffer.from(await (await fetch(url, { headers })).arrayBuffer());
      const pull = await load({ url, headers, durationS, connections: size > MB ? 8 : 32 });
      const plain = Fastify();
      plain.get('/p', async (_req, reply) => reply.type('application/pkcs7-mime').send(body));
      const plainUrl = await plain.listen({ host: '127.0.0.1', port: 0 });
      const ref = await load({ url: `${plainUrl}/p`, durationS, connections: size > MB ? 8 : 32 });
      await plain.close();
      rows.push({
        scenario: `pull ${label} package`,
        'req/s': pull.requestsPerSec,
        'p99 ms': pull.p99Ms,
        ratio: pull.requestsPerSec / ref.requestsPerSec,
        compared: `plain route ${ref.requestsPerSec.toFixed(0)} req/s`,
        errors: pull.errors + pull.non2xx,
      });
    }
    await app.close();
  }

  if (parts.includes('cycle')) {
    const cycle = await pullCycle({ pg, dataDir, ctx, db, durationS });
    rows.push(...cycle.rows);
    notes.pullCycle = cycle.facts;
  }
  report('storage', rows, {
    ...notes,
    note: 'pull cycle: CPU is the storage service process + its Postgres (postmaster and backends) from /proc, 10 ms ticks; DB round trips are queries sent by its pg clients (lib/count-queries.mjs)',
    targets: { pullCycleRatioToPlainRoute: 0.5, providerPullPackagesPerSec: 1500 },
  });
  await deps.close();
} finally {
  await pg.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
