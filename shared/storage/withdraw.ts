import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import type { DeliveryRow } from '../db/tables/deliveries.js';

/**
 * Takes a delivery its provider never acknowledged out of the provider's reach (state FAILED, so
 * a late acknowledgement is refused), in the caller's transaction. The row is locked first, so an
 * acknowledgement racing with this either lands before (and nothing is withdrawn) or is refused.
 * Written for the ingestion service's expiry; the evidence event is the caller's to append.
 */
export async function withdrawUnacknowledged(trx: Transaction<Database>, deliveryId: string): Promise<DeliveryRow | undefined> {
  const row = await trx.selectFrom('deliveries').selectAll().where('id', '=', deliveryId).forUpdate().executeTakeFirst();
  if (!row || row.state !== 'READY') return undefined;
  await trx
    .updateTable('deliveries')
    .set({ state: 'FAILED', leased_until: null, updated_at: sql<Date>`now()` as unknown as Date })
    .where('id', '=', deliveryId)
    .execute();
  return row;
}
