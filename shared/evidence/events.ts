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
  // The sender withdrew the letter before any provider acknowledged it.
  CANCELLED: 'CANCELLED',
};

/**
 * A letter's later life (issue 14). CANCELLED: withdrawn by its sender before acknowledgement
 * (with a receipt). MOVED_OUT: the citizen's old provider exported it to the hub; MOVED_IN: the
 * new provider acknowledged it. The move events are on the timeline only (no receipt, no status
 * change: a moved letter is not delivered again in law, no new alert, no new deadline).
 */
export const LIFECYCLE_EVENTS = { CANCELLED: 'CANCELLED', MOVED_OUT: 'MOVED_OUT', MOVED_IN: 'MOVED_IN' } as const;

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
  return (await appendEvents(trx, hub, [input]))[0]!;
}

/** An event to append unless the message already has one of its type (NOTIFIED, say). */
export interface AppendOnce extends AppendEvent {
  once?: boolean;
}

/**
 * Appends events to one or many messages with four statements whatever their number: the
 * per-message locks, one read of every chain's head, one insert of the events and one of the
 * receipts. Events of one message chain in the order given. An event with `once` is dropped
 * (undefined in the answer) when its message already has an event of that type, checked under
 * the lock, so two appenders racing to add it add one.
 */
export async function appendEvents(trx: Transaction<Database> | Kysely<Database>, hub: HubKeys, inputs: readonly AppendOnce[]): Promise<(AppendedEvent | undefined)[]>;
export async function appendEvents(trx: Transaction<Database> | Kysely<Database>, hub: HubKeys, inputs: readonly AppendEvent[]): Promise<AppendedEvent[]>;
export async function appendEvents(trx: Transaction<Database> | Kysely<Database>, hub: HubKeys, inputs: readonly AppendOnce[]): Promise<(AppendedEvent | undefined)[]> {
  if (inputs.length === 0) return [];
  // Load the signing key before taking the per-message locks (a cold cache reads the database).
  await hub.signingKey();
  const run = async (t: Transaction<Database>) => {
    const ids = [...new Set(inputs.map((i) => i.messageId))].sort();
    // Appends to one message queue up behind each other, so the chain never forks; locks are
    // taken in id order, so two batches never wait on each other in a cycle.
    await sql`select pg_advisory_xact_lock(hashtextextended('postbud.events:' || id, 0))
      from (select id from unnest(${sql.val(ids)}::text[]) as x(id) order by id offset 0) ordered`.execute(t);
    const onceTypes = [...new Set(inputs.filter((i) => i.once).map((i) => i.type))];
    // Without `once` events there is nothing to look for. With them, the types seen come from one
    // aggregate joined to the heads, over the same `message_id = any(...)` (the primary key's
    // leading column), not a subquery per message: planned with statistics from before the
    // sequencer made leaves, such a subquery scanned the whole message_events_leaf index once
    // per message, 58 ms per 50 messages at 12,000 leaves.
    const seenJoin = onceTypes.length
      ? sql`left join (
          select e.message_id, array_agg(distinct e.type) as types from message_events e
           where e.message_id = any(${sql.val(ids)}::uuid[]) and e.type = any(${sql.val(onceTypes)}::text[])
           group by e.message_id) s on s.message_id = h.message_id`
      : sql``;
    const seen = onceTypes.length ? sql`coalesce(s.types, '{}'::text[])` : sql`'{}'::text[]`;
    const { rows: heads } = await sql<{ message_id: string; seq: number; hash: string; seen: string[] }>`
      select h.message_id, h.seq, h.hash, ${seen} as seen
      from (
        select distinct on (message_id) message_id, seq, hash from message_events
        where message_id = any(${sql.val(ids)}::uuid[]) order by message_id, seq desc
      ) h
      ${seenJoin}`.execute(t);
    const head = new Map(heads.map((h) => [h.message_id, { seq: h.seq, hash: h.hash as string | null, seen: new Set(h.seen) }]));
    const events: { message_id: string; seq: number; type: string; at: Date; data: string; prev_hash: string | null; hash: string }[] = [];
    const receipts: { id: string; message_id: string; sender_orgnr: string; type: string; event_seq: number; jws: string }[] = [];
    const out: (AppendedEvent | undefined)[] = [];
    for (const input of inputs) {
      const h = head.get(input.messageId) ?? { seq: 0, hash: null, seen: new Set<string>() };
      head.set(input.messageId, h);
      if (input.once && h.seen.has(input.type)) {
        out.push(undefined);
        continue;
      }
      const event: ChainedEvent = {
        messageId: input.messageId,
        seq: h.seq + 1,
        type: input.type,
        at: input.at ?? new Date(),
        data: input.data ?? {},
        prevHash: h.hash,
      };
      const hash = eventHash(event);
      h.seq = event.seq;
      h.hash = hash;
      h.seen.add(event.type);
      events.push({ message_id: event.messageId, seq: event.seq, type: event.type, at: event.at, data: JSON.stringify(event.data), prev_hash: event.prevHash, hash });
      const receiptType = RECEIPT_TYPES[input.type];
      if (!(input.receipt ?? receiptType !== undefined)) {
        out.push({ seq: event.seq, hash });
        continue;
      }
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
      receipts.push({ id: payload.receiptId, message_id: event.messageId, sender_orgnr: input.senderOrgnr, type: payload.type, event_seq: event.seq, jws });
      out.push({ seq: event.seq, hash, receipt: { id: payload.receiptId, type: payload.type, jws } });
    }
    if (events.length > 0) await t.insertInto('message_events').values(events).execute();
    if (receipts.length > 0) await t.insertInto('receipts').values(receipts).execute();
    return out;
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

/** A first event (see firstEvent) as its row. */
export type FirstEventRow = ReturnType<typeof firstEvent>['row'];

/**
 * The insert of many first events (see firstEvent) as one set-based statement, to be a CTE of
 * the caller's larger statement: one array per column, so the statement text is the same
 * whatever the number of events (it can be prepared once).
 */
export function insertFirstEventsSql(rows: readonly FirstEventRow[]) {
  const col = <K extends keyof FirstEventRow>(k: K) => sql.val(rows.map((r) => r[k]));
  return sql`insert into message_events (message_id, seq, type, at, data, prev_hash, hash)
    select message_id, 1, type, at, data, null, hash
      from unnest(${col('message_id')}::uuid[], ${col('type')}::text[], ${col('at')}::timestamptz[], ${col('data')}::jsonb[], ${col('hash')}::text[])
        as e(message_id, type, at, data, hash)`;
}

/** A message's events in order, as the chain checker wants them. */
export async function loadEvents(db: Kysely<Database>, messageId: string) {
  const rows = await db.selectFrom('message_events').selectAll().where('message_id', '=', messageId).orderBy('seq').execute();
  return rows.map((r) => ({ messageId: r.message_id, seq: r.seq, type: r.type, at: r.at, data: r.data, prevHash: r.prev_hash, hash: r.hash }));
}
