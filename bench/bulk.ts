/**
 * Bulk send: the same letters (one 10 KB PDF each) sent one per request (POST /v1/messages, 8
 * clients in parallel) and in batches (POST /v1/messages/batch, 50 letters per request, 1 and 2
 * batches in flight), against one ingestion process. Letters per second, whole run wall clock.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { issueDevToken } from '../shared/auth/dev-issuer.js';
import { SCOPES } from '../shared/auth/scopes.js';
import { connectDb } from '../shared/db/connect.js';
import { migrateToLatest } from '../shared/db/migrate.js';
import { letter, PDF, seedRegistry, SENDER } from '../tests/services/ingestion/fixtures.js';
import { batchBody } from '../tests/services/lifecycle/batch.js';
import { multipart } from '../tests/services/ingestion/fixtures.js';
import { startIngestion } from './intake.js';
import { benchDatabase } from './lib/postgres.js';
import { report, type Row } from './lib/report.js';

const LETTERS = Number(process.env.BENCH_BULK_LETTERS ?? 400);
const BATCH = 50;
const pdf = PDF(10 * 1024);

async function parallel(n: number, workers: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < n) await fn(next++);
  }));
}

async function single(url: string, token: string, workers: number) {
  let failed = 0;
  const t0 = performance.now();
  await parallel(LETTERS, workers, async () => {
    const b = multipart(letter(), [{ name: 'vedtak.pdf', content: pdf }]);
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': b.contentType, 'idempotency-key': randomUUID() }, body: b.payload });
    if (res.status !== 201) failed++;
    await res.arrayBuffer();
  });
  return { ms: performance.now() - t0, failed };
}

async function bulk(url: string, token: string, inFlight: number) {
  let failed = 0;
  const t0 = performance.now();
  await parallel(Math.ceil(LETTERS / BATCH), inFlight, async () => {
    const b = batchBody(Array.from({ length: BATCH }, () => ({ idempotencyKey: randomUUID(), message: letter(), documents: [{ name: 'vedtak.pdf', content: pdf }] })));
    const res = await fetch(`${url}/v1/messages/batch`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': b.contentType }, body: b.payload });
    const body = (await res.json()) as { accepted?: number };
    failed += BATCH - (body.accepted ?? 0);
  });
  return { ms: performance.now() - t0, failed };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const pg = await benchDatabase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-bulk-'));
  try {
    const db = connectDb(pg.url, { poolSize: 2 });
    await migrateToLatest(db.kysely);
    await seedRegistry(db.kysely); // idempotent: a reused BENCH_DATABASE_URL or a dev-seeded registry keeps its rows
    await db.close();
    const token = await issueDevToken(dataDir, { org: SENDER, scope: SCOPES.send, audience: 'postbud' });
    const ingestion = await startIngestion(pg.url, undefined, dataDir, 'bench_bulk');
    const rows: Row[] = [];
    try {
      await single(ingestion.url, token, 8); // warm-up
      const runs: [string, () => Promise<{ ms: number; failed: number }>][] = [
        ['single sends, 8 clients', () => single(ingestion.url, token, 8)],
        [`batches of ${BATCH}, 1 in flight`, () => bulk(ingestion.url, token, 1)],
        [`batches of ${BATCH}, 2 in flight`, () => bulk(ingestion.url, token, 2)],
        ['single sends, 8 clients (again)', () => single(ingestion.url, token, 8)],
      ];
      let base = 0;
      for (const [scenario, run] of runs) {
        const r = await run();
        const perSec = (LETTERS / r.ms) * 1000;
        base ||= perSec;
        rows.push({ scenario, letters: LETTERS, 'letters/s': Math.round(perSec), 'vs single': perSec / base, failed: r.failed });
      }
    } finally {
      await ingestion.stop();
    }
    report('bulk', rows, { letters: LETTERS, batch: BATCH, loadavg: os.loadavg() });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await pg.stop();
  }
}
