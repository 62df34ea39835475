/**
 * Lookup throughput: POST /v1/persons/lookup with batches of 1,000 persons against 1,000,000
 * seeded persons, next to the raw SQL the endpoint runs (the same query, the provider-certificate
 * query and the audit insert, straight on pg), measured in one run. The registry runs as its own
 * process (as deployed); RSS of both is reported. Target (DESIGN.md): >= 100,000 persons/s.
 *
 *   npm run bench -- lookup        BENCH_DURATION_S (default 10), BENCH_PERSONS (default 1000000)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { sql } from 'kysely';
import type pg from 'pg';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { SCOPES } from '../shared/auth/scopes.js';
import { connectDb } from '../shared/db/connect.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { syntheticPersonIdList } from '../shared/ids/person-id.js';
import { recipientsQuery } from '../shared/registry/recipients.js';
import { createDevCertificate } from '../shared/registry/dev-certificate.js';
import { projectRoot } from '../shared/runtime/project-root.js';
import { freePort } from '../tests/harness/free-port.js';
import { benchDatabase } from './lib/postgres.js';
import { report, type Row } from './lib/report.js';

const PERSONS = Number(process.env.BENCH_PERSONS ?? 1_000_000);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const BATCH = 1000;
const CONNECTIONS = 8;
const DIGIPOST = '984661185';
const EBOKS = '922020175';

const mb = (bytes: number) => Math.round(bytes / 1e6);

/** 1M persons: ids generated in Node (valid fnr), rows built by Postgres with generate_series-style set SQL. */
async function seedPersons(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ n: string }>('select count(*) as n from persons');
  const ids = syntheticPersonIdList(PERSONS);
  if (Number(rows[0]!.n) >= PERSONS) return ids;
  const started = Date.now();
  const certs = [createDevCertificate({ commonName: 'Digipost' }), createDevCertificate({ commonName: 'e-Boks' })];
  await pool.query(
    `insert into providers (orgnr, name, kind, certificate) values ($1, 'Digipost', 'digital', $2), ($3, 'e-Boks', 'digital', $4) on conflict do nothing`,
    [DIGIPOST, certs[0]!.der, EBOKS, certs[1]!.der],
  );
  const CHUNK = 100_000;
  for (let i = 0; i < ids.length; i += CHUNK) {
    // Contact info, reservation and language derived from the row number inside Postgres.
    await pool.query(
      `insert into persons (person_id, reserved, reserved_at, language, language_updated_at,
                            email, email_updated_at, email_verified_at, mobile, mobile_updated_at)
       select id, n % 12 = 0, case when n % 12 = 0 then now() - interval '400 days' end,
              case when n % 10 = 0 then 'nn' else 'nb' end, now() - interval '300 days',
              'person' || n || '@example.com', now() - (n % 800) * interval '1 day',
              case when n % 2 = 0 then now() - (n % 300) * interval '1 day' end,
              '+479' || lpad((n % 10000000)::text, 7, '0'), now() - (n % 700) * interval '1 day'
         from unnest($1::text[]) with ordinality as u(id, n)
       on conflict do nothing`,
      [ids.slice(i, i + CHUNK)],
    );
  }
  // 85% have an active mailbox, 60/40 Digipost/e-Boks; every 50th has its own certificate.
  await pool.query(
    `insert into mailboxes (person_id, provider_orgnr, address, certificate, active)
     select person_id, case when h % 10 < 6 then $1 else $2 end, 'mb#' || person_id,
            case when h % 50 = 0 then $3::bytea end, true
       from (select person_id, abs(hashtext(person_id)) as h from persons) p
      where h % 100 < 85
     on conflict do nothing`,
    [DIGIPOST, EBOKS, certs[1]!.der],
  );
  await pool.query('vacuum analyze persons');
  await pool.query('vacuum analyze mailboxes');
  process.stdout.write(`seeded ${ids.length} persons in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return ids;
}

/** Batches of 1,000 random persons (2% unknown valid ids, like real traffic). */
function batches(ids: string[], count: number): string[][] {
  const unknown = syntheticPersonIdList(BATCH, ids.length + 10);
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return Array.from({ length: count }, () =>
    Array.from({ length: BATCH }, (_, k) => (k % 50 === 0 ? unknown[Math.floor(rand() * unknown.length)]! : ids[Math.floor(rand() * ids.length)]!)),
  );
}

async function startRegistry(databaseUrl: string, dataDir: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot(), 'services/registry/main.ts')], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      DATABASE_URL: databaseUrl,
      DATA_DIR: dataDir,
      REGISTRY_PORT: String(port),
      RATE_LIMIT_PER_MINUTE: '10000000',
      LOG_LEVEL: 'warn',
      QUEUE_PREFIX: 'benchlookup',
      DATABASE_POOL_SIZE: '10',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error('registry exited');
    const ok = await fetch(`${url}/health/ready`).then((r) => r.ok, () => false);
    if (ok) break;
    if (i > 300) throw new Error('registry did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Peak and current RSS of a process (Linux), in bytes. */
function rssOf(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: 0, peak: 0 };
  }
}

async function endpoint(url: string, token: string, work: string[][]) {
  let i = 0;
  const bodies = work.map((ids) => JSON.stringify({ personIds: ids }));
  const result = await autocannon({
    url: `${url}/v1/persons/lookup`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: DURATION_S,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-purpose': 'bench' },
    requests: [{ setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length]! }) }],
  });
  return {
    batchesPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    bytesPerBatch: result.throughput.average / Math.max(result.requests.average, 1),
  };
}

/** The endpoint's SQL without HTTP, auth, validation or JSON: CONNECTIONS workers for DURATION_S. */
async function rawSql(databaseUrl: string, work: string[][]) {
  const db = connectDb(databaseUrl, { poolSize: CONNECTIONS });
  const query = (ids: string[]) => recipientsQuery(ids, true).compile(db.kysely);
  const certs = 'select orgnr, certificate from providers where orgnr in ($1, $2)';
  const audit = "insert into lookup_audit (consumer_org, client_id, api, person_count, purpose, scopes) values ('974760673', null, 'v1', $1, 'bench', 'x')";
  let done = 0;
  const latencies: number[] = [];
  const end = Date.now() + DURATION_S * 1000;
  let i = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < end) {
        const ids = work[i++ % work.length]!;
        const t0 = performance.now();
        const q = query(ids);
        await Promise.all([db.pool.query(q.sql, q.parameters as unknown[]), db.pool.query(audit, [ids.length])]);
        await db.pool.query(certs, [DIGIPOST, EBOKS]);
        latencies.push(performance.now() - t0);
        done++;
      }
    }),
  );
  await db.close();
  latencies.sort((a, b) => a - b);
  return { batchesPerSec: done / DURATION_S, p50Ms: latencies[Math.floor(latencies.length / 2)] ?? 0, p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

const database = await benchDatabase();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-lookup-'));
try {
  const db = connectDb(database.url, { poolSize: 2 });
  await migrateToLatest(db.kysely);
  const ids = await seedPersons(db.pool);
  const stats = await sql<{ persons: string; mailboxes: string }>`select (select count(*) from persons) as persons, (select count(*) from mailboxes where active) as mailboxes`.execute(db.kysely);
  await db.close();
  const work = batches(ids, 200);

  const raw = await rawSql(database.url, work);
  const registry = await startRegistry(database.url, dataDir);
  const token = await issueDevToken(dataDir, { org: '974760673', scope: `${SCOPES.lookup} ${SCOPES.lookupContact} ${SCOPES.lookupDigitalPost}`, audience: 'postbud', ttlSeconds: 3600 });
  const basicToken = await issueDevToken(dataDir, { org: '974760673', scope: SCOPES.lookup, audience: 'postbud', ttlSeconds: 3600 });
  let api;
  let basic;
  let serverMem;
  try {
    // Warm-up (JIT, pool, plan cache), then the measured runs.
    await endpoint(registry.url, token, work.slice(0, 20)).catch(() => undefined);
    api = await endpoint(registry.url, token, work);
    basic = await endpoint(registry.url, basicToken, work);
    serverMem = rssOf(registry.pid);
  } finally {
    await registry.stop();
  }
  const personsPerSec = (b: number) => Math.round(b * BATCH);
  const rows: Row[] = [
    {
      scenario: 'POST /v1/persons/lookup (1000/batch, all scopes)',
      'batches/s': api.batchesPerSec,
      'persons/s': personsPerSec(api.batchesPerSec),
      'p50 ms': api.p50Ms,
      'p99 ms': api.p99Ms,
      errors: api.errors,
      'server RSS MB': mb(serverMem.rss),
      'server peak MB': mb(serverMem.peak),
    },
    {
      scenario: 'POST /v1/persons/lookup (1000/batch, postbud:lookup only)',
      'batches/s': basic.batchesPerSec,
      'persons/s': personsPerSec(basic.batchesPerSec),
      'p50 ms': basic.p50Ms,
      'p99 ms': basic.p99Ms,
      errors: basic.errors,
      'server RSS MB': '-',
      'server peak MB': '-',
    },
    {
      scenario: 'raw SQL of the endpoint (pg, same batches)',
      'batches/s': raw.batchesPerSec,
      'persons/s': personsPerSec(raw.batchesPerSec),
      'p50 ms': raw.p50Ms,
      'p99 ms': raw.p99Ms,
      errors: 0,
      'server RSS MB': '-',
      'server peak MB': '-',
    },
  ];
  const file = report('lookup', rows, {
    durationS: DURATION_S,
    connections: CONNECTIONS,
    seededPersons: Number(stats.rows[0]!.persons),
    activeMailboxes: Number(stats.rows[0]!.mailboxes),
    endpointVsRawSql: api.batchesPerSec / raw.batchesPerSec,
    targetPersonsPerSec: 100_000,
    responseKbPerBatch: Math.round(api.bytesPerBatch / 1024),
    loadAverage: os.loadavg(),
    benchRssMb: mb(process.memoryUsage().rss),
  });
  process.stdout.write(`endpoint/raw SQL: ${(api.batchesPerSec / raw.batchesPerSec).toFixed(2)}; wrote ${file}\n`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
  await database.stop();
}
