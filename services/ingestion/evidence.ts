import type { Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { HubKeys } from '../../shared/crypto/hub-keys.js';
import { buildBundle, type EvidenceBundle } from '../../shared/evidence/bundle.js';
import { Problem } from '../../shared/errors/problem.js';
import { ingestionProblems } from './problems.js';

/**
 * The evidence bundle of one of the sender's own letters (docs/evidence.md); another sender's
 * id, like an unknown one, is simply not found.
 */
export async function evidenceBundle(db: Kysely<Database>, hub: HubKeys, org: string, id: string): Promise<EvidenceBundle> {
  const own = await db.selectFrom('messages').select('id').where('id', '=', id).where('sender_orgnr', '=', org).executeTakeFirst();
  if (!own) throw new Problem(ingestionProblems.MESSAGE_NOT_FOUND, 'No message with this id was sent by you');
  return buildBundle(db, hub, id, org);
}
