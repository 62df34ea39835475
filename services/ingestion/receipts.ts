import { sql, type Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { ReceiptPayload } from '../../shared/evidence/events.js';

/** The payload of a compact JWS, unverified (the sender verifies against the JWKS). */
export function decodeJws(jws: string): ReceiptPayload {
  return JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as ReceiptPayload;
}

export interface ReceiptView {
  id: string;
  type: string;
  messageId: string;
  createdAt: string;
  jws: string;
  receipt: ReceiptPayload;
}

/**
 * The sender's unacknowledged receipts, oldest first. Pulling changes nothing: a receipt stays
 * until acknowledged, so a client that dies between pull and ack sees it again.
 */
export async function pullReceipts(db: Kysely<Database>, org: string, limit: number): Promise<ReceiptView[]> {
  const rows = await db
    .selectFrom('receipts')
    .select(['id', 'type', 'message_id', 'created_at', 'jws'])
    .where('sender_orgnr', '=', org)
    .where('acked_at', 'is', null)
    .orderBy('created_at')
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ id: r.id, type: r.type, messageId: r.message_id, createdAt: r.created_at.toISOString(), jws: r.jws, receipt: decodeJws(r.jws) }));
}

/** Acknowledges the sender's own receipts among `ids`; others' ids and repeated acks change nothing. */
export async function ackReceipts(db: Kysely<Database>, org: string, ids: readonly string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await db
    .updateTable('receipts')
    .set({ acked_at: sql<Date>`now()` as unknown as Date })
    .where('sender_orgnr', '=', org)
    .where('id', '=', sql<string>`any(${sql.val([...new Set(ids)])}::uuid[])`)
    .where('acked_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}
