import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './database.js';

// bigint ids and counts stay strings (no silent precision loss); timestamptz stays Date.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => v);

export interface Db {
  kysely: Kysely<Database>;
  pool: pg.Pool;
  close(): Promise<void>;
}

export function connectDb(url: string, opts: { poolSize?: number; applicationName?: string; connectTimeoutMs?: number } = {}): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    application_name: opts.applicationName ?? 'postbud',
    // Without a bound a request waits for a connection for ever (pool busy, server gone); with one
    // it fails with pg-pool's timeout, which the error handler answers 503 with Retry-After.
    ...(opts.connectTimeoutMs ? { connectionTimeoutMillis: opts.connectTimeoutMs } : {}),
  });
  // A client losing its connection (Postgres restarted or killed) must not crash the process.
  // The pool handles idle clients; a checked-out one (inside a transaction, between statements)
  // has no listener of the pool's, and pg emits the error on it: its next query fails instead,
  // the transaction rolls back and the pool drops the client.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kysely,
    pool,
    // Kysely's destroy ends the pool it was given.
    close: () => kysely.destroy(),
  };
}

export type { Kysely };
