import type { Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';

/** A message's evidence chain as verifyReceipt takes it. */
export async function eventChain(db: Kysely<Database>, messageId: string) {
  const rows = await db.selectFrom('message_events').selectAll().where('message_id', '=', messageId).orderBy('seq').execute();
  return rows.map((e) => ({ messageId: e.message_id, seq: e.seq, type: e.type, at: e.at, data: e.data, prevHash: e.prev_hash, hash: e.hash }));
}
