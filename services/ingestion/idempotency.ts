import { createHash } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import { canonicalJson } from '../../shared/evidence/chain.js';

/**
 * Idempotency-Key handling (see docs/ingestion.md):
 *
 * - The answer to a request is stored with its key, in the same transaction as the letter, so a
 *   key has an answer exactly when its letter exists. The primary key (sender, key) makes a
 *   second letter under one key impossible whatever happens to processes and locks.
 * - "In flight" is a transaction advisory lock on the key, taken by the group commit that writes
 *   the letter (intake/commit.ts): another transaction committing the same key gets 409, and a
 *   process killed mid-commit drops its connection and the lock with it.
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
