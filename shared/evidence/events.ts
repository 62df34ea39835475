import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import type { HubKeys } from '../crypto/hub-keys.js';
import { eventHash, type ChainedEvent } from './chain.js';

/**
 * The per-message evidence log. Each event carries the hash of the one before it; sender-facing
 * events also get a receipt signed by the hub (a JWS), written in the caller's transaction so
 * the state change, the event and the receipt commit or vanish together.
 */

/** Event type -> the receipt type a sender sees; types not listed are internal. */
export const RECEIPT_TYPES: Readonly<Record<string, string>> = {
  DELIVERED: 'DELIVERED',
  OPENED: 'OPENED',
  NOTIFICATION_FAILED: 'NOTIFICATION_FAILED',
  PRINT_ACCEPTED: 'PRINT_ACCEPTED',
  RETURNED: 'RETURNED',
  ERROR: 'ERROR',
  NOTIFIED: 'NOTIFIED',
  // A provider reporting that it could not deliver: the sender sees an ERROR receipt.
  FAILED: 'ERROR',
};

export const RECEIPT_TYP = 'postbud-receipt+jws';

export interface AppendEvent {
  messageId: string;
  type: string;
  data?: Record<string, unknown>;
  senderOrgnr: string;
  /** Defaults to whether the type is sender-facing (RECEIPT_TYPES). */
  receipt?: boolean;
  at?: Date;
}

export interface AppendedEvent {
  seq: number;
  hash: string;
  receipt?: { id: string; type: string; jws: string };
}

/** What a receipt JWS carries. */
export interface ReceiptPayload {
  receiptId: string;
  type: string;
  messageId: string;
  sender: string;
  at: string;
  data: Record<string, unknown>;
  event: { seq: number; type: string; hash: string; prevHash: string | null };
  iat: number;
}

export async function appendEvent(trx: Transaction<Database> | Kysely<Database>, hub: HubKeys, input: AppendEvent): Promise<AppendedEvent> {
  // Load the signing key before taking the per-message lock (a cold cache reads the database).
  await hub.signingKey();
  const run = async (t: Transaction<Database>) => {
    // Appends to one message queue up behind each other, so the chain never forks.
    await sql`select pg_advisory_xact_lock(hashtextextended(${`postbud.events:${input.messageId}`}, 0))`.execute(t);
    const last = await t
      .selectFrom('message_events')
      .select(['seq', 'hash'])
      .where('message_id', '=', input.messageId)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const event: ChainedEvent = {
      messageId: input.messageId,
      seq: (last?.seq ?? 0) + 1,
      type: input.type,
      at: input.at ?? new Date(),
      data: input.data ?? {},
      prevHash: last?.hash ?? null,
    };
    const hash = eventHash(event);
    await t
      .insertInto('message_events')
      .values({ message_id: event.messageId, seq: event.seq, type: event.type, at: event.at, data: JSON.stringify(event.data), prev_hash: event.prevHash, hash })
      .execute();
    const receiptType = RECEIPT_TYPES[input.type];
    if (!(input.receipt ?? receiptType !== undefined)) return { seq: event.seq, hash };
    const payload: ReceiptPayload = {
      receiptId: randomUUID(),
      type: receiptType ?? input.type,
      messageId: event.messageId,
      sender: input.senderOrgnr,
      at: event.at.toISOString(),
      data: event.data,
      event: { seq: event.seq, type: event.type, hash, prevHash: event.prevHash },
      iat: Math.floor(Date.now() / 1000),
    };
    const jws = await hub.sign(Buffer.from(JSON.stringify(payload)), { typ: RECEIPT_TYP });
    await t
      .insertInto('receipts')
      .values({ id: payload.receiptId, message_id: event.messageId, sender_orgnr: input.senderOrgnr, type: payload.type, event_seq: event.seq, jws })
      .execute();
    return { seq: event.seq, hash, receipt: { id: payload.receiptId, type: payload.type, jws } };
  };
  return trx.isTransaction ? run(trx as Transaction<Database>) : (trx as Kysely<Database>).transaction().execute(run);
}

/**
 * The first event of a message created in the caller's own transaction: seq 1 and no previous
 * hash, so no lock and no read are needed (nobody else can append to a message that is not
 * committed yet; a message that does have events fails on the (message_id, seq) primary key
 * rather than forking). For internal types only: no receipt is made. The caller inserts `row`.
 */
export function firstEvent(input: Omit<AppendEvent, 'receipt' | 'senderOrgnr'>) {
  if (RECEIPT_TYPES[input.type] !== undefined) throw new Error(`firstEvent is for internal events, not ${input.type}`);
  const event: ChainedEvent = { messageId: input.messageId, seq: 1, type: input.type, at: input.at ?? new Date(), data: input.data ?? {}, prevHash: null };
  const hash = eventHash(event);
  return { seq: 1, hash, row: { message_id: event.messageId, seq: 1, type: event.type, at: event.at, data: JSON.stringify(event.data), prev_hash: null, hash } };
}

/** A message's events in order, as the chain checker wants them. */
export async function loadEvents(db: Kysely<Database>, messageId: string) {
  const rows = await db.selectFrom('message_events').selectAll().where('message_id', '=', messageId).orderBy('seq').execute();
  return rows.map((r) => ({ messageId: r.message_id, seq: r.seq, type: r.type, at: r.at, data: r.data, prevHash: r.prev_hash, hash: r.hash }));
}
