import { createHash } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from '../../shared/db/database.js';
import { canonicalJson } from '../../shared/evidence/chain.js';
import { commonProblems, Problem } from '../../shared/errors/problem.js';

/**
 * Idempotency-Key handling (see docs/ingestion.md):
 *
 * - The answer to a request is stored with its key, in the same transaction as the letter, so a
 *   key has an answer exactly when its letter exists. The primary key (sender, key) makes a
 *   second letter under one key impossible whatever happens to processes and locks.
 * - "In flight" is a session advisory lock on a few dedicated connections, taken before the body
 *   is read: a concurrent duplicate gets 409 at once, and a process killed mid-request releases
 *   its locks with its connections, so the client's retry is not blocked by a dead request.
 */

const KEY = /^[\x21-\x7e]{1,255}$/;

export const isValidIdempotencyKey = (value: unknown): value is string => typeof value === 'string' && KEY.test(value);

/** SHA-256 over the canonical message part and each document's name, type and content hash. */
export function requestFingerprint(message: unknown, documents: readonly { name: string; mime: string; sha256: string }[]): string {
  return createHash('sha256')
    .update(canonicalJson({ message, documents: documents.map((d) => ({ name: d.name, mime: d.mime, sha256: d.sha256 })) }))
    .digest('hex');
}

export interface StoredAnswer {
  requestHash: string;
  messageId: string;
  response: Record<string, unknown>;
}

type DbLike = Kysely<Database> | Transaction<Database>;

/** The stored answer under a key that has not expired. */
export async function findAnswer(db: DbLike, sender: string, key: string): Promise<StoredAnswer | undefined> {
  const row = await db
    .selectFrom('idempotency_keys')
    .select(['request_hash', 'message_id', 'response'])
    .where('sender_orgnr', '=', sender)
    .where('key', '=', key)
    .where('expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
  return row ? { requestHash: row.request_hash, messageId: row.message_id, response: row.response } : undefined;
}

/**
 * Stores the answer in the caller's transaction. False when the key already has a live answer
 * (a duplicate got there first): the caller rolls back. An expired row is taken over.
 */
export async function storeAnswer(trx: Transaction<Database>, sender: string, key: string, answer: StoredAnswer, ttlHours: number): Promise<boolean> {
  const row = await trx
    .insertInto('idempotency_keys')
    .values({
      sender_orgnr: sender,
      key,
      request_hash: answer.requestHash,
      message_id: answer.messageId,
      response: JSON.stringify(answer.response),
      expires_at: sql<Date>`now() + make_interval(hours => ${ttlHours})`,
    })
    .onConflict((oc) =>
      oc
        .columns(['sender_orgnr', 'key'])
        .doUpdateSet({
          request_hash: (eb) => eb.ref('excluded.request_hash'),
          message_id: (eb) => eb.ref('excluded.message_id'),
          response: (eb) => eb.ref('excluded.response'),
          created_at: sql<Date>`now()`,
          expires_at: (eb) => eb.ref('excluded.expires_at'),
        })
        .where('idempotency_keys.expires_at', '<=', sql<Date>`now()`),
    )
    .returning('key')
    .executeTakeFirst();
  return row !== undefined;
}

export async function deleteExpiredKeys(db: Kysely<Database>, limit = 5000): Promise<number> {
  const r = await sql<{ n: string }>`
    with gone as (
      delete from idempotency_keys where ctid in (select ctid from idempotency_keys where expires_at <= now() limit ${limit}) returning 1
    ) select count(*)::text as n from gone`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Session advisory locks multiplexed over a few dedicated connections (a key always maps to the
 * same one). Advisory locks are re-entrant within a session, so keys held by this process are
 * also tracked here.
 */
export class InFlightLocks {
  private readonly clients: (Promise<pg.Client> | undefined)[];
  private readonly held = new Set<string>();
  /** One query at a time per connection (pg no longer queues them for us). */
  private readonly tails: Promise<unknown>[];
  private closed = false;

  constructor(
    private readonly databaseUrl: string,
    connections = 2,
  ) {
    this.clients = new Array<Promise<pg.Client> | undefined>(connections).fill(undefined);
    this.tails = new Array<Promise<unknown>>(connections).fill(Promise.resolve());
  }

  private query<T extends pg.QueryResultRow>(i: number, text: string, values: unknown[]): Promise<pg.QueryResult<T>> {
    const run = this.tails[i]!.catch(() => undefined).then(async () => (await this.client(i)).query<T>(text, values));
    this.tails[i] = run;
    return run;
  }

  private slot(name: string): number {
    return createHash('sha256').update(name).digest().readUInt32BE(0) % this.clients.length;
  }

  private client(i: number): Promise<pg.Client> {
    let c = this.clients[i];
    if (!c) {
      const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'postbud-ingestion-locks' });
      // A lost connection loses its locks; the next use reconnects. The stored answer's primary
      // key still prevents a second letter under one key.
      const drop = () => {
        if (this.clients[i] === c) this.clients[i] = undefined;
      };
      client.on('error', drop);
      client.on('end', drop);
      c = client.connect().then(() => client);
      c.catch(drop);
      this.clients[i] = c;
    }
    return c;
  }

  /** Takes the lock or returns false when another request (here or in another process) holds it. */
  async tryLock(name: string): Promise<boolean> {
    if (this.closed) throw new Problem(commonProblems.UNAVAILABLE, 'The service is stopping');
    if (this.held.has(name)) return false;
    this.held.add(name);
    try {
      const r = await this.query<{ ok: boolean }>(this.slot(name), 'select pg_try_advisory_lock(hashtextextended($1, 0)) as ok', [name]);
      if (!r.rows[0]?.ok) this.held.delete(name);
      return r.rows[0]?.ok === true;
    } catch {
      this.held.delete(name);
      throw new Problem(commonProblems.UNAVAILABLE, 'The database is not reachable; retry');
    }
  }

  async unlock(name: string): Promise<void> {
    if (!this.held.delete(name)) return;
    const i = this.slot(name);
    if (!this.clients[i]) return; // the connection is gone, and its locks with it
    await this.query(i, 'select pg_advisory_unlock(hashtextextended($1, 0))', [name]).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.clients.map((c) => c?.then((client) => client.end()).catch(() => undefined)));
  }
}
