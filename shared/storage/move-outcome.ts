import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { MoveState } from '../db/tables/moves.js';

/**
 * How a citizen's move of delivered mail ended, for the notification service's notice (it reads
 * storage's `moves` through this module and never writes them).
 */
export interface MoveOutcome {
  moveId: string;
  personId: string;
  state: MoveState;
  toProviderOrgnr: string;
  toProviderName: string | null;
  letters: number;
  moved: number;
  missing: number;
  failed: number;
}

export async function findMoveOutcome(db: Kysely<Database>, moveId: string): Promise<MoveOutcome | undefined> {
  const m = await db
    .selectFrom('moves as m')
    .leftJoin('providers as p', 'p.orgnr', 'm.to_provider_orgnr')
    .select(['m.id', 'm.person_id', 'm.state', 'm.to_provider_orgnr', 'p.name'])
    .where('m.id', '=', moveId)
    .executeTakeFirst();
  if (!m) return undefined;
  const items = await db.selectFrom('move_items').select('state').where('move_id', '=', moveId).execute();
  const n = (s: string) => items.filter((i) => i.state === s).length;
  return { moveId: m.id, personId: m.person_id, state: m.state, toProviderOrgnr: m.to_provider_orgnr, toProviderName: m.name, letters: items.length, moved: n('MOVED'), missing: n('MISSING'), failed: n('FAILED') };
}

/** The outbox job storage writes when a move ends; the payload is only a trigger (no personId). */
export const MOVE_NOTICE_JOB = 'citizen-notice';
export interface MoveNoticeJob {
  moveId: string;
}
