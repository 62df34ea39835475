/**
 * Intake: POST /v1/messages with one 10 KB PDF, through the whole ingestion stack (auth, multipart,
 * MIME check, routing, sealing into Postgres, message + delivery + event + outbox in one
 * transaction, the outbox relay running), next to the baseline (a bare Fastify route doing one
 * insert of the same bytes). Then the RSS of an ingestion process while it takes one 50 MB letter,
 * and 20 concurrent 10 MB letters, streamed.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { service } from '../services/ingestion/app.js';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { SCOPES } from '../shared/auth/scopes.js';
import { loadConfig } from '../shared/config/config.js';
import { connectDb } from '../shared/db/connect.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { projectRoot } from '../shared/runtime/project-root.js';
import { startService } from '../shared/runtime/run-service.js';
import { freePort } from '../tests/harness/free-port.js';
import { letter, seedRegistry, SENDER } from '../tests/services/ingestion/fixtures.js';
import { BODY_10KB, measureBaseline } from './baseline.js';
import { load, type LoadResult } from './lib/load.js';
import { benchDatabase } from './lib/postgres.js';
import { report, type Row } from './lib/report.js';

const BOUNDARY = '----postbud-bench';
const head = () =>
  Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${JSON.stringify(letter())}\r\n` +
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="document"; filename="vedtak.pdf"\r\nContent-Type: application/pdf\r\n` +
      '\r\n',
  );
const TAIL = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
// ASCII only: autocannon's id replacement rewrites the request as text.
const PDF_10KB = Buffer.concat([Buffer.from('%PDF-1.7\n'), BODY_10KB.subarray(9)]);
const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** One letter with a document of `size` bytes, generated while it streams (nothing held whole). */
function postLarge(url: string, token: string, size: number, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const piece = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(64 * 1024 - 9)]);
    async function* body() {
      yield head();
      let sent = 0;
      while (sent < size) {
        const n = Math.min(piece.length, size - sent);
        yield piece.subarray(0, n);
        sent += n;
      }
      yield TAIL;
    }
    const req = http.request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPE, 'idempotency-key': key } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    Readable.from(body()).pipe(req);
  });
}

/** Runs the ingestion service as its own process (the load generator then has this one to itself). */
async function startIngestionProcess(databaseUrl: string, dataDir: string, prefix: string) {
  const port = await freePort();
  const root = projectRoot();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'services/ingestion/main.ts')], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, DATA_DIR: dataDir, INGESTION_PORT: String(port), LOG_LEVEL: 'warn', QUEUE_PREFIX: prefix, RATE_LIMIT_PER_MINUTE: '10000000', DATABASE_POOL_SIZE: '20' },
    stdio: 'ignore',
  });
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 300) throw new Error('ingestion did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** The baseline server as its own process. */
async function measureBaselineProcess(databaseUrl: string, durationS: number): Promise<LoadResult> {
  const root = projectRoot();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/lib/baseline-server.ts')], {
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
      child.once('exit', () => reject(new Error('baseline server exited')));
    });
    await load({ url, method: 'POST', body: BODY_10KB, headers: { 'content-type': 'application/octet-stream' }, durationS: 2 }); // warm-up
    return await load({ url, method: 'POST', body: BODY_10KB, headers: { 'content-type': 'application/octet-stream' }, durationS });
  } finally {
    child.kill('SIGTERM');
  }
}

async function measureRss(databaseUrl: string, dataDir: string, token: string) {
  const running = await startIngestionProcess(databaseUrl, dataDir, 'bench_rss');
  const child = running.child;
  const url = `${running.url}/v1/messages`;
  try {
    // Warm up: JIT, pools, hub key, a few letters of each size.
    for (let i = 0; i < 3; i++) await postLarge(url, token, 1024 * 1024, crypto.randomUUID());
    const run = async (fn: () => Promise<number[]>) => {
      global.gc?.();
      await new Promise((r) => setTimeout(r, 500));
      const before = rssMb(child.pid!);
      let peak = before;
      const timer = setInterval(() => (peak = Math.max(peak, rssMb(child.pid!))), 20);
      const codes = await fn();
      clearInterval(timer);
      return { before, peak, growth: peak - before, codes };
    };
    const one = await run(async () => [await postLarge(url, token, 50_000_000, crypto.randomUUID())]);
    const twenty = await run(() => Promise.all(Array.from({ length: 20 }, () => postLarge(url, token, 10_000_000, crypto.randomUUID()))));
    return { one, twenty };
  } finally {
    child.kill('SIGKILL');
  }
}

const fmt = (r: LoadResult) => ({ 'p50 ms': r.p50Ms, 'p99 ms': r.p99Ms, errors: r.errors + r.non2xx });

if (import.meta.url === `file://${process.argv[1]}`) {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
  const pg = await benchDatabase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-intake-'));
  try {
    const db = connectDb(pg.url, { poolSize: 2 });
    await migrateToLatest(db.kysely);
    await seedRegistry(db.kysely).catch(() => undefined); // already seeded on a reused BENCH_DATABASE_URL
    await db.close();

    // Server and load generator in separate processes (autocannon in this one): the figures the
    // targets are judged by. Then the same two in one process (server and autocannon sharing an
    // event loop), as the first version of this bench measured, for comparison.
    const baseline = await measureBaselineProcess(pg.url, durationS);
    const token = await issueDevToken(dataDir, { org: SENDER, scope: SCOPES.send, audience: 'postbud' });
    const body = Buffer.concat([head(), PDF_10KB, TAIL]);
    const intakeAt = (base: string) => (extra: { rate?: number; durationS?: number; connections?: number } = {}) =>
      load({
        url: `${base}/v1/messages`,
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${token}`, 'content-type': CONTENT_TYPE, 'idempotency-key': '[<id>]' },
        durationS,
        idReplacement: true,
        ...extra,
      });
    const rows: Row[] = [];
    const ingestion = await startIngestionProcess(pg.url, dataDir, 'bench_intake');
    try {
      const intake = intakeAt(ingestion.url);
      await intake({ durationS: 3 }); // warm-up
      const max = await intake();
      rows.push({ scenario: 'baseline: fastify + 1 pg insert (10 KB), own process', 'req/s': Math.round(baseline.requestsPerSec), ...fmt(baseline) });
      rows.push({ scenario: 'intake, 10 KB letter, max (32 conns), own process', 'req/s': Math.round(max.requestsPerSec), ...fmt(max), 'vs baseline': max.requestsPerSec / baseline.requestsPerSec });
      for (const rate of [250, 500, 1000]) {
        const r = await intake({ rate });
        rows.push({ scenario: `intake at ${rate}/s`, 'req/s': Math.round(r.requestsPerSec), ...fmt(r) });
      }
    } finally {
      await ingestion.stop();
    }

    const inBaseline = await measureBaseline(pg.url, durationS);
    const config = loadConfig({
      NODE_ENV: 'development',
      DATABASE_URL: pg.url,
      DATA_DIR: dataDir,
      INGESTION_PORT: '0',
      LOG_LEVEL: 'warn',
      QUEUE_PREFIX: 'bench_intake',
      RATE_LIMIT_PER_MINUTE: '10000000',
      DATABASE_POOL_SIZE: '20',
    });
    const running = await startService(service, config);
    try {
      const intake = intakeAt(running.url);
      await intake({ durationS: 3 }); // warm-up
      const max = await intake();
      rows.push({ scenario: 'baseline, same process as autocannon', 'req/s': Math.round(inBaseline.requestsPerSec), ...fmt(inBaseline) });
      rows.push({ scenario: 'intake max, same process as autocannon', 'req/s': Math.round(max.requestsPerSec), ...fmt(max), 'vs baseline': max.requestsPerSec / inBaseline.requestsPerSec });
    } finally {
      await running.stop();
    }
    const rss = await measureRss(pg.url, dataDir, token);
    rows.push({ scenario: 'RSS: one 50 MB letter', 'RSS growth MB': Math.round(rss.one.growth), 'RSS before MB': Math.round(rss.one.before), status: rss.one.codes.join(',') });
    rows.push({
      scenario: 'RSS: 20 concurrent 10 MB letters',
      'RSS growth MB': Math.round(rss.twenty.growth),
      'RSS before MB': Math.round(rss.twenty.before),
      status: [...new Set(rss.twenty.codes)].join(','),
    });
    report('intake', rows, { durationS, targets: { lettersPerSec: 1500, p99MsAt500: 50, rssGrowthMbFor50Mb: 64, ratioToBaseline: 0.5 } });
  } finally {
    await pg.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
