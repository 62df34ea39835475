import { createHash } from 'node:crypto';
import type { Kysely, RawBuilder } from 'kysely';
import type pg from 'pg';

/**
 * Hot-path statements run as named prepared statements on a raw pooled connection: Postgres
 * parses and plans each text once per connection, and the statement goes out as one
 * Bind/Execute instead of Parse/Bind/Describe/Execute. Statements are built with kysely's `sql`
 * (so query modules compose) and compiled here; the name is a hash of the text, so two texts
 * never share a name.
 */
export type Run = <R>(query: RawBuilder<R>) => Promise<R[]>;

const names = new Map<string, string>();
const nameOf = (text: string): string => {
  let name = names.get(text);
  if (!name) {
    name = `pb_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    names.set(text, name);
  }
  return name;
};

async function runOn<R>(client: pg.PoolClient | pg.Pool, kysely: Kysely<never>, query: RawBuilder<R>): Promise<R[]> {
  const compiled = query.compile(kysely);
  const res = await client.query({ name: nameOf(compiled.sql), text: compiled.sql, values: compiled.parameters as unknown[] });
  return res.rows as R[];
}

/** One statement on any pooled connection (no transaction). */
export function runPrepared<R>(pool: pg.Pool, kysely: Kysely<never>, query: RawBuilder<R>): Promise<R[]> {
  return runOn(pool, kysely, query);
}

/**
 * `fn` inside one transaction on one pooled connection; COMMIT when it resolves, ROLLBACK when it
 * throws. A connection whose rollback fails is discarded, not returned to the pool.
 */
export async function preparedTransaction<T>(pool: pg.Pool, kysely: Kysely<never>, fn: (run: Run) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // Not awaited: the client sends fn's first statement as soon as BEGIN is answered, from its
    // socket handler, instead of after a turn of a busy event loop. A failed BEGIN fails that
    // statement too.
    const begun = client.query('begin');
    begun.catch(() => undefined); // awaited below
    const out = await fn((q) => runOn(client, kysely, q));
    await begun;
    await client.query('commit');
    return out;
  } catch (err) {
    await client.query('rollback').catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
    throw err;
  } finally {
    client.release(broken);
  }
}
