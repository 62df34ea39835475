import { sql, type Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { ingestionProblems } from './problems.js';
import { senderMaySee } from '../../shared/evidence/sender-view.js';

/**
 * Status as a sender sees it, folded from the evidence log by `message_status()` (migration
 * 0004), and its eFormidling equivalent (docs/ingestion.md).
 */
export const MESSAGE_STATUSES = ['ACCEPTED', 'DELIVERED', 'NOTIFIED', 'OPENED', 'PRINT_ACCEPTED', 'FAILED', 'EXPIRED', 'CANCELLED'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export const EFORMIDLING_STATUS: Readonly<Record<MessageStatus, string>> = {
  ACCEPTED: 'SENDT',
  DELIVERED: 'LEVERT',
  NOTIFIED: 'LEVERT',
  OPENED: 'LEST',
  PRINT_ACCEPTED: 'MOTTATT',
  FAILED: 'FEIL',
  EXPIRED: 'LEVETID_UTLOPT',
  // eFormidling has no withdrawn state; a cancelled letter never reached the citizen.
  CANCELLED: 'FEIL',
};

/** Event type -> the status it sets (types not listed leave the status as it was). */
export function statusOfEvent(type: string, data: Record<string, unknown>): MessageStatus | undefined {
  switch (type) {
    case 'SEALED':
      return 'ACCEPTED';
    case 'DELIVERED':
    case 'NOTIFIED':
    case 'OPENED':
    case 'PRINT_ACCEPTED':
      return type;
    case 'PRINTED':
      return 'PRINT_ACCEPTED';
    case 'FAILED':
    case 'RETURNED':
      return 'FAILED';
    case 'CANCELLED':
      return 'CANCELLED';
    case 'ERROR':
      return data.reason === 'EXPIRED' ? 'EXPIRED' : 'FAILED';
    default:
      return undefined;
  }
}

/** Event data a sender may see: ids, providers, reasons; never contact points or anything personal. */
const VISIBLE_DATA = [
  'deliveryId',
  'route',
  'providerOrgnr',
  'fromProviderOrgnr',
  'toProviderOrgnr',
  'reason',
  'errorType',
  'detail',
  'channel',
  'repetition',
  'securityLevel',
  'manifestSha256',
  'moveId',
  'originalDeliveryId',
] as const;

const visible = (data: Record<string, unknown>) => Object.fromEntries(VISIBLE_DATA.filter((k) => data[k] !== undefined).map((k) => [k, data[k]]));

interface MessageStatusRow {
  id: string;
  sender_reference: string | null;
  route: string;
  provider_orgnr: string;
  provider_name: string | null;
  security_level: number;
  available_at: Date;
  open_receipt: boolean;
  created_at: Date;
  created_key: string;
  status: MessageStatus | null;
  status_at: Date | null;
}

const summary = (r: MessageStatusRow) => {
  const status = r.status ?? 'ACCEPTED';
  return {
    id: r.id,
    senderReference: r.sender_reference,
    route: r.route,
    provider: { orgnr: r.provider_orgnr, name: r.provider_name },
    status,
    eFormidlingStatus: EFORMIDLING_STATUS[status],
    statusAt: (r.status_at ?? r.created_at).toISOString(),
    createdAt: r.created_at.toISOString(),
    availableAt: r.available_at.toISOString(),
    securityLevel: r.security_level,
    openReceipt: r.open_receipt,
  };
};

/**
 * Route and provider are where the letter is now (its newest delivery, `message_location()`,
 * migration 0013), not the intake's first decision: re-addressing and the print fallback move it.
 */
const selectWithStatus = sql`
  select m.id, m.sender_reference, coalesce(l.route, m.route) as route, coalesce(l.provider_orgnr, m.provider_orgnr) as provider_orgnr,
         p.name as provider_name, m.security_level, m.available_at,
         m.open_receipt, m.created_at, m.created_at::text as created_key, s.status, s.status_at
    from messages m
    cross join lateral message_status(m.id) s
    cross join lateral message_location(m.id) l
    left join providers p on p.orgnr = coalesce(l.provider_orgnr, m.provider_orgnr)`;

/** One of the sender's own messages with its timeline; another sender's id is simply not found. */
export async function messageStatus(db: Kysely<Database>, org: string, id: string) {
  const { rows } = await sql<MessageStatusRow>`${selectWithStatus} where m.id = ${id}::uuid and m.sender_orgnr = ${org}`.execute(db);
  const row = rows[0];
  if (!row) throw new Problem(ingestionProblems.MESSAGE_NOT_FOUND, 'No message with this id was sent by you');
  const events = await db.selectFrom('message_events').select(['seq', 'type', 'at', 'data', 'hash']).where('message_id', '=', id).orderBy('seq').execute();
  // seq keeps its chain value, so a hidden event shows as a gap, not as a renumbering.
  const shown = events.filter((e) => senderMaySee(e.type, { openReceipt: row.open_receipt }));
  return {
    ...summary(row),
    timeline: shown.map((e) => {
      const status = statusOfEvent(e.type, e.data);
      return { seq: e.seq, type: e.type, at: e.at.toISOString(), ...(status ? { status } : {}), data: visible(e.data), hash: e.hash };
    }),
  };
}

interface Cursor {
  c: string;
  i: string;
}

const encodeCursor = (r: MessageStatusRow) => Buffer.from(JSON.stringify({ c: r.created_key, i: r.id } satisfies Cursor)).toString('base64url');

function decodeCursor(raw: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<Cursor>;
    if (typeof c.c === 'string' && typeof c.i === 'string' && !Number.isNaN(Date.parse(c.c)) && /^[0-9a-f-]{36}$/.test(c.i)) return c as Cursor;
  } catch {
    /* fall through */
  }
  throw new Problem(ingestionProblems.INVALID_CURSOR, 'Pass the nextCursor of a previous page unchanged');
}

export interface MessageQuery {
  status?: MessageStatus;
  /** Exact match on the sender's own reference (unique per sender, so at most one letter). */
  senderReference?: string;
  /** Status changed at or after / before. */
  since?: Date;
  until?: Date;
  /** Created at or after / before. */
  createdFrom?: Date;
  createdTo?: Date;
  cursor?: string;
  limit: number;
}

/**
 * The sender's messages, oldest first, in pages (keyset on created_at, id). `status` filters on
 * the current status; `since`/`until` on when the status last changed; `createdFrom`/`createdTo`
 * on when the letter was accepted (half-open ranges: from inclusive, to exclusive);
 * `senderReference` finds the one letter with that reference.
 */
export async function listMessages(db: Kysely<Database>, org: string, q: MessageQuery) {
  for (const [from, to] of [[q.since, q.until], [q.createdFrom, q.createdTo]] as const) {
    if (from && to && from > to) throw new Problem(ingestionProblems.INVALID_TIME_RANGE, 'The start of a time range must not be after its end');
  }
  const after = q.cursor ? decodeCursor(q.cursor) : undefined;
  const { rows } = await sql<MessageStatusRow>`${selectWithStatus}
    where m.sender_orgnr = ${org}
      ${after ? sql`and (m.created_at, m.id) > (${after.c}::timestamptz, ${after.i}::uuid)` : sql``}
      ${q.status ? sql`and coalesce(s.status, 'ACCEPTED') = ${q.status}` : sql``}
      ${q.senderReference !== undefined ? sql`and m.sender_reference = ${q.senderReference}` : sql``}
      ${q.createdFrom ? sql`and m.created_at >= ${q.createdFrom}` : sql``}
      ${q.createdTo ? sql`and m.created_at < ${q.createdTo}` : sql``}
      ${q.since ? sql`and coalesce(s.status_at, m.created_at) >= ${q.since}` : sql``}
      ${q.until ? sql`and coalesce(s.status_at, m.created_at) < ${q.until}` : sql``}
    order by m.created_at, m.id
    limit ${q.limit + 1}`.execute(db);
  const page = rows.slice(0, q.limit);
  return { items: page.map(summary), nextCursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!) : null };
}
