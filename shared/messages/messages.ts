import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import { isUuid } from '../ids/uuid.js';
import type { MessageNotifications, MessageRoute } from '../db/tables/messages.js';

type DbLike = Kysely<Database> | Transaction<Database>;

/** What other services read about an accepted letter (the alerts build their texts from it). */
export interface MessageInfo {
  id: string;
  senderOrgnr: string;
  personId: string;
  title: string;
  language: string;
  securityLevel: 3 | 4;
  availableAt: Date;
  openReceipt: boolean;
  notifications: MessageNotifications | null;
  /** Where the letter is now (its newest delivery): re-addressing and the print fallback move it. */
  route: MessageRoute;
  providerOrgnr: string;
  createdAt: Date;
}


export async function findMessage(db: DbLike, id: string): Promise<MessageInfo | undefined> {
  return (await findMessages(db, [id])).get(id.toLowerCase());
}

/** Several letters in one read, keyed by (lower-case) id; ids that are not UUIDs or not letters are absent. */
export async function findMessages(db: DbLike, ids: readonly string[]): Promise<Map<string, MessageInfo>> {
  const wanted = [...new Set(ids.filter(isUuid).map((id) => id.toLowerCase()))];
  if (wanted.length === 0) return new Map();
  const rows = await db
    .selectFrom('messages as m')
    .innerJoinLateral(
      (eb) => eb.selectFrom(sql<{ route: MessageRoute | null; provider_orgnr: string | null }>`message_location(m.id)`.as('l')).selectAll().as('loc'),
      (j) => j.onTrue(),
    )
    .select([
      'm.id',
      'm.sender_orgnr',
      'm.person_id',
      'm.title',
      'm.language',
      'm.security_level',
      'm.available_at',
      'm.open_receipt',
      'm.notifications',
      sql<MessageRoute>`coalesce(loc.route, m.route)`.as('route'),
      sql<string>`coalesce(loc.provider_orgnr, m.provider_orgnr)`.as('provider_orgnr'),
      'm.created_at',
    ])
    .where('m.id', 'in', wanted)
    .execute();
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        senderOrgnr: r.sender_orgnr,
        personId: r.person_id,
        title: r.title,
        language: r.language,
        securityLevel: r.security_level as 3 | 4,
        availableAt: r.available_at,
        openReceipt: r.open_receipt,
        notifications: r.notifications,
        route: r.route,
        providerOrgnr: r.provider_orgnr,
        createdAt: r.created_at,
      },
    ]),
  );
}
