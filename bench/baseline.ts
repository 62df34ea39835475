/**
 * The baseline later benchmarks compare with: a bare Fastify route that inserts the request body
 * (10 KB) as one row into Postgres. Nothing of postbud's stack but Fastify and pg.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { benchDatabase } from './lib/postgres.js';
import { load, type LoadResult } from './lib/load.js';
import { report } from './lib/report.js';

export const BODY_10KB = Buffer.alloc(10 * 1024, 'postbud-letter-');

/** Starts the baseline server on a free port; the caller stops it. */
export async function startBaseline(databaseUrl: string) {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  pool.on('error', () => undefined);
  await pool.query('create table if not exists bench_baseline (id bigserial primary key, body bytea not null, created_at timestamptz not null default now())');
  const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/baseline', async (req, reply) => {
    const { rows } = await pool.query('insert into bench_baseline (body) values ($1) returning id', [req.body]);
    return reply.code(201).send({ id: rows[0].id });
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: `${url}/baseline`,
    async stop() {
      await app.close();
      await pool.end();
    },
  };
}

export async function measureBaseline(databaseUrl: string, durationS = 10): Promise<LoadResult> {
  const server = await startBaseline(databaseUrl);
  try {
    return await load({ url: server.url, method: 'POST', body: BODY_10KB, headers: { 'content-type': 'application/octet-stream' }, durationS });
  } finally {
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const db = await benchDatabase();
  try {
    const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
    const r = await measureBaseline(db.url, durationS);
    report('baseline', [{ scenario: 'fastify + 1 pg insert (10 KB)', 'req/s': r.requestsPerSec, 'p50 ms': r.p50Ms, 'p99 ms': r.p99Ms, errors: r.errors + r.non2xx }], { durationS });
  } finally {
    await db.stop();
  }
}
