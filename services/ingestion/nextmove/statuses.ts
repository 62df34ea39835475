import { sql, type Kysely, type Transaction } from 'kysely';
import { Type } from 'typebox';
import type { Database } from '../../../shared/db/database.js';
import { Problem } from '../../../shared/errors/problem.js';
import { ownValue } from '../../../shared/runtime/own-key.js';
import { EFORMIDLING_STATUS, statusOfEvent } from '../status.js';
import { ingestionProblems } from '../problems.js';
import { limitOffset, orderBy, pageOf, type PagingParams } from './paging.js';
import { violation } from './sbd.js';
import type { NextMoveRow } from './messages.js';

/**
 * Statuses in next-move's vocabulary. OPPRETTET is recorded when a message is created; the rest
 * are folded in from the evidence log with the same mapping as the native status
 * (status.ts: statusOfEvent, EFORMIDLING_STATUS; docs/ingestion.md), each status at most once per
 * message, at its first event, with a numeric id in the order they were recorded. Each new
 * status is queued for the sender's matching webhook subscriptions in the same transaction.
 */

export const NEXTMOVE_STATUSES = ['OPPRETTET', 'SENDT', 'MOTTATT', 'LEVERT', 'LEST', 'FEIL', 'ANNET', 'INNKOMMENDE_MOTTATT', 'INNKOMMENDE_LEVERT', 'LEVETID_UTLOPT'] as const;
export type NextMoveStatus = (typeof NEXTMOVE_STATUSES)[number];

export const STATUS_DESCRIPTIONS: Readonly<Record<string, string>> = {
  OPPRETTET: 'Opprettet',
  SENDT: 'Sendt',
  MOTTATT: 'Mottatt',
  LEVERT: 'Levert',
  LEST: 'Lest',
  FEIL: 'Feil',
  ANNET: 'Annet',
  INNKOMMENDE_MOTTATT: 'Innkommende mottatt',
  INNKOMMENDE_LEVERT: 'Innkommende levert',
  LEVETID_UTLOPT: 'Levetiden for meldingen er utgått. Må sendes på nytt',
};
const FINAL = new Set(['LEST', 'FEIL', 'LEVETID_UTLOPT']);

type DbLike = Kysely<Database> | Transaction<Database>;

/** New statuses go to every matching subscription of their sender (the pusher sends them). */
async function queuePushes(trx: Transaction<Database>, statusIds: string[]): Promise<void> {
  if (statusIds.length === 0) return;
  await sql`
    insert into nextmove_pushes (subscription_id, status_id)
    select s.id, st.id
      from nextmove_statuses st
      join nextmove_subscriptions s on s.sender_orgnr = st.sender_orgnr
     where st.id = any(${statusIds}::bigint[])
       and (s.filter_status is null or st.status = any(s.filter_status))
       and (s.filter_service is null or 'DPI' = any(s.filter_service))
       and (s.filter_direction is null or 'OUTGOING' = any(s.filter_direction))
    on conflict do nothing`.execute(trx);
}

/** OPPRETTET, in the creating transaction. */
export async function recordCreated(trx: Transaction<Database>, row: NextMoveRow): Promise<void> {
  const { rows } = await sql<{ id: string }>`
    insert into nextmove_statuses (message_id, sender_orgnr, status, at) values (${row.message_id}, ${row.sender_orgnr}, 'OPPRETTET', ${row.created_at})
    on conflict do nothing returning id`.execute(trx);
  await queuePushes(trx, rows.map((r) => r.id));
}

/**
 * Folds new evidence events of sent, unfinished next-move messages into statuses (optionally
 * only one sender's or one message's). Safe to run concurrently: a status exists once
 * (unique per message) and only the inserting run queues its pushes. Returns how many were added.
 */
export async function syncStatuses(db: Kysely<Database>, only: { org?: string; messageId?: string } = {}): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ message_id: string; sender_orgnr: string; seq: number; type: string; data: Record<string, unknown>; at: Date }>`
      select n.message_id, n.sender_orgnr, e.seq, e.type, e.data, e.at
        from nextmove_messages n
        join message_events e on e.message_id = n.message_id and e.seq > n.events_seen
       where n.state = 'SENDT' and not n.finished
         ${only.org ? sql`and n.sender_orgnr = ${only.org}` : sql``}
         ${only.messageId ? sql`and n.message_id = ${only.messageId}::uuid` : sql``}
       order by n.message_id, e.seq
       limit 5000`.execute(trx);
    if (rows.length === 0) return 0;
    const seen = new Map<string, { seq: number; finished: boolean }>();
    const statuses: { message_id: string; sender_orgnr: string; status: string; at: Date; event_seq: number }[] = [];
    for (const r of rows) {
      const native = statusOfEvent(r.type, r.data);
      const status = native ? EFORMIDLING_STATUS[native] : undefined;
      const s = seen.get(r.message_id) ?? { seq: 0, finished: false };
      s.seq = Math.max(s.seq, r.seq);
      if (status) {
        statuses.push({ message_id: r.message_id, sender_orgnr: r.sender_orgnr, status, at: r.at, event_seq: r.seq });
        if (FINAL.has(status)) s.finished = true;
      }
      seen.set(r.message_id, s);
    }
    let added: string[] = [];
    if (statuses.length > 0) {
      const inserted = await trx
        .insertInto('nextmove_statuses')
        .values(statuses)
        .onConflict((oc) => oc.columns(['message_id', 'status']).doNothing())
        .returning('id')
        .execute();
      added = inserted.map((r) => r.id);
    }
    const ids = [...seen.keys()];
    await sql`
      update nextmove_messages n set events_seen = greatest(n.events_seen, u.seq), finished = n.finished or u.finished
        from unnest(${ids}::uuid[], ${ids.map((id) => seen.get(id)!.seq)}::int[], ${ids.map((id) => seen.get(id)!.finished)}::boolean[]) as u(id, seq, finished)
       where n.message_id = u.id`.execute(trx);
    await queuePushes(trx, added);
    return added.length;
  });
}

interface StatusRow {
  id: string;
  at: Date;
  status: string;
  conv_id: string;
  conversation_id: string;
  message_id: string;
  total?: string;
}

export const MessageStatusView = Type.Object({
  id: Type.Integer({ description: 'The numeric message status id' }),
  lastUpdate: Type.String({ format: 'date-time' }),
  status: Type.Union(NEXTMOVE_STATUSES.map((s) => Type.Literal(s))),
  description: Type.String(),
  convId: Type.Integer(),
  conversationId: Type.String(),
  messageId: Type.String(),
});

const statusView = (r: StatusRow) => ({
  id: Number(r.id),
  lastUpdate: r.at.toISOString(),
  status: r.status,
  description: ownValue(STATUS_DESCRIPTIONS, r.status) ?? r.status,
  convId: Number(r.conv_id),
  conversationId: r.conversation_id,
  messageId: r.message_id,
});

export interface StatusQuery extends PagingParams {
  id?: number;
  messageId?: string;
  conversationId?: string;
  status?: string;
  fromDateTime?: string;
  toDateTime?: string;
}

const STATUS_SORT = { id: 's.id', lastUpdate: 's.at', lastUpdated: 's.at', status: 's.status', messageId: 's.message_id', conversationId: 'n.conversation_id' };

const statusSelect = sql`
  select s.id, s.at, s.status, n.conv_id, n.conversation_id, s.message_id, count(*) over () as total
    from nextmove_statuses s join nextmove_messages n on n.message_id = s.message_id`;

/** The sender's statuses, filtered, sorted and paged as next-move does (GET /api/statuses). */
export async function findStatuses(db: Kysely<Database>, org: string, q: StatusQuery) {
  for (const k of ['fromDateTime', 'toDateTime'] as const) {
    if (q[k] !== undefined && Number.isNaN(Date.parse(q[k]))) throw violation(k, 'Must be a date-time', q[k]);
  }
  await syncStatuses(db, { org });
  const order = orderBy(q.sort, STATUS_SORT, 's.id');
  const { rows } = await sql<StatusRow>`${statusSelect}
    where s.sender_orgnr = ${org}
      ${q.id !== undefined ? sql`and s.id = ${q.id}` : sql``}
      ${q.messageId ? sql`and s.message_id::text = ${q.messageId.toLowerCase()}` : sql``}
      ${q.conversationId ? sql`and n.conversation_id = ${q.conversationId}` : sql``}
      ${q.status ? sql`and s.status = any(${q.status.split(',')}::text[])` : sql``}
      ${q.fromDateTime && q.toDateTime ? sql`and s.at between ${new Date(q.fromDateTime)} and ${new Date(q.toDateTime)}` : sql``}
    order by ${order.sql}
    ${limitOffset(q)}`.execute(db);
  const total = rows[0] ? Number(rows[0].total) : await countStatuses(db, org, q);
  return pageOf(rows.map(statusView), total, q, order.sorted);
}

/** The total when the requested page is past the end (no row to carry the window count). */
async function countStatuses(db: Kysely<Database>, org: string, q: StatusQuery): Promise<number> {
  if ((q.page ?? 0) === 0) return 0;
  const page0 = await findStatuses(db, org, { ...q, page: 0, size: 1 });
  return page0.totalElements;
}

/** The status with the latest lastUpdate, or undefined (204). */
export async function peekStatus(db: Kysely<Database>, org: string) {
  await syncStatuses(db, { org });
  const { rows } = await sql<StatusRow>`${statusSelect} where s.sender_orgnr = ${org} order by s.at desc, s.id desc limit 1`.execute(db);
  return rows[0] ? statusView(rows[0]) : undefined;
}

/** One status by id, for a push (any sender: the pusher sends it to the subscription of its own sender). */
export async function statusById(db: DbLike, id: string) {
  const { rows } = await sql<StatusRow>`${statusSelect} where s.id = ${id}`.execute(db);
  return rows[0] ? statusView(rows[0]) : undefined;
}

interface ConversationRow {
  conv_id: string;
  conversation_id: string;
  message_id: string;
  sender_orgnr: string;
  receiver: string;
  process: string;
  type: string;
  sbd: NextMoveRow['sbd'];
  finished: boolean;
  created_at: Date;
  statuses: { id: string; at: string; status: string }[];
  total?: string;
}

export const ConversationView = Type.Object({
  id: Type.Integer({ description: 'The numeric conversation id (convId)' }),
  conversationId: Type.String(),
  messageId: Type.String(),
  senderIdentifier: Type.String(),
  receiverIdentifier: Type.String(),
  processIdentifier: Type.String(),
  messageReference: Type.Union([Type.String(), Type.Null()]),
  messageTitle: Type.Union([Type.String(), Type.Null()]),
  serviceCode: Type.Null({ description: 'DPO only' }),
  serviceEditionCode: Type.Null({ description: 'DPO only' }),
  lastUpdate: Type.String({ format: 'date-time' }),
  finished: Type.Boolean(),
  expiry: Type.Union([Type.String(), Type.Null()], { description: 'expectedResponseDateTime of the SBD, if given' }),
  direction: Type.Literal('OUTGOING'),
  serviceIdentifier: Type.Literal('DPI'),
  messageStatuses: Type.Array(
    Type.Object({ id: Type.Integer(), lastUpdate: Type.String({ format: 'date-time' }), status: Type.String(), description: Type.String() }),
  ),
});

const conversationView = (r: ConversationRow) => {
  const scope = r.sbd.standardBusinessDocumentHeader.businessScope.scope;
  const statuses = r.statuses.map((s) => ({ id: Number(s.id), lastUpdate: new Date(s.at).toISOString(), status: s.status, description: ownValue(STATUS_DESCRIPTIONS, s.status) ?? s.status }));
  return {
    id: Number(r.conv_id),
    conversationId: r.conversation_id,
    messageId: r.message_id,
    senderIdentifier: `0192:${r.sender_orgnr}`,
    receiverIdentifier: r.receiver,
    processIdentifier: r.process,
    messageReference: scope.find((s) => s.type === 'SenderRef')?.instanceIdentifier ?? null,
    messageTitle: r.sbd.digital?.tittel ?? null,
    serviceCode: null,
    serviceEditionCode: null,
    lastUpdate: statuses.at(-1)?.lastUpdate ?? r.created_at.toISOString(),
    finished: r.finished,
    expiry: scope.find((s) => s.type === 'ConversationId')?.scopeInformation?.[0]?.expectedResponseDateTime ?? null,
    direction: 'OUTGOING' as const,
    serviceIdentifier: 'DPI' as const,
    messageStatuses: statuses,
  };
};

const conversationSelect = sql`
  select n.conv_id, n.conversation_id, n.message_id, n.sender_orgnr, n.receiver, n.process, n.type, n.sbd, n.finished, n.created_at,
         coalesce((select json_agg(json_build_object('id', s.id, 'at', s.at, 'status', s.status) order by s.at, s.id)
                     from nextmove_statuses s where s.message_id = n.message_id), '[]') as statuses,
         count(*) over () as total
    from nextmove_messages n`;

export interface ConversationQuery extends PagingParams {
  messageId?: string;
  conversationId?: string;
  receiverIdentifier?: string;
  messageReference?: string;
  serviceIdentifier?: string;
  direction?: string;
  finished?: boolean;
}

const CONVERSATION_SORT = { id: 'n.conv_id', lastUpdate: 'n.created_at', lastUpdated: 'n.created_at', messageId: 'n.message_id', conversationId: 'n.conversation_id' };

export async function findConversations(db: Kysely<Database>, org: string, q: ConversationQuery): Promise<ReturnType<typeof pageOf<ReturnType<typeof conversationView>>>> {
  await syncStatuses(db, { org });
  const order = orderBy(q.sort, CONVERSATION_SORT, 'n.conv_id');
  const none = (q.serviceIdentifier && !q.serviceIdentifier.split(',').includes('DPI')) || (q.direction && !q.direction.split(',').includes('OUTGOING'));
  const { rows } = await sql<ConversationRow>`${conversationSelect}
    where n.sender_orgnr = ${org}
      ${none ? sql`and false` : sql``}
      ${q.messageId ? sql`and n.message_id::text = ${q.messageId.toLowerCase()}` : sql``}
      ${q.conversationId ? sql`and n.conversation_id = ${q.conversationId}` : sql``}
      ${q.receiverIdentifier ? sql`and n.receiver = ${q.receiverIdentifier}` : sql``}
      ${q.messageReference ? sql`and exists (select 1 from jsonb_array_elements(n.sbd->'standardBusinessDocumentHeader'->'businessScope'->'scope') x
                                               where x->>'type' = 'SenderRef' and x->>'instanceIdentifier' = ${q.messageReference})` : sql``}
      ${q.finished !== undefined ? sql`and n.finished = ${q.finished}` : sql``}
    order by ${order.sql}
    ${limitOffset(q)}`.execute(db);
  const total: number = rows[0] ? Number(rows[0].total) : (q.page ?? 0) === 0 ? 0 : (await findConversations(db, org, { ...q, page: 0, size: 1 })).totalElements;
  return pageOf(rows.map(conversationView), total, q, order.sorted);
}

export async function conversationBy(db: Kysely<Database>, org: string, by: { convId: number } | { messageId: string }) {
  await syncStatuses(db, { org });
  const { rows } = await sql<ConversationRow>`${conversationSelect}
    where n.sender_orgnr = ${org} and ${'convId' in by ? sql`n.conv_id = ${by.convId}` : sql`n.message_id::text = ${by.messageId.toLowerCase()}`}`.execute(db);
  if (!rows[0]) {
    const what = 'convId' in by ? `id = ${by.convId}` : `messageId = ${by.messageId}`;
    throw new Problem(ingestionProblems.NEXTMOVE_CONVERSATION_NOT_FOUND, `Conversation with ${what} was not found`);
  }
  return conversationView(rows[0]);
}
