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

export type CancelOutcome =
  | { outcome: 'cancelled'; delivery: DeliveryRow }
  | { outcome: 'already-cancelled'; delivery: DeliveryRow }
  | { outcome: 'acknowledged'; delivery: DeliveryRow }
  | { outcome: 'not-pending' };

/**
 * The sender's cancellation (DELETE /v1/messages/{id}), storage's half, in the caller's
 * transaction: every delivery of the message is locked (FOR UPDATE, the same row lock a
 * provider's acknowledgement takes), so of a cancel and an ack racing exactly one sees READY.
 * The pending delivery becomes CANCELLED (out of every listing; a late ack is refused) and its
 * package is purged at once: chunks deleted, data key shredded. Nothing else is touched when the
 * letter was acknowledged already or is no longer pending (expired, failed).
 */
export async function cancelUnacknowledged(trx: Transaction<Database>, messageId: string, at: Date): Promise<CancelOutcome> {
  const rows = await trx.selectFrom('deliveries').selectAll().where('message_id', '=', messageId).orderBy('created_at', 'desc').orderBy('id').forUpdate().execute();
  const cancelled = rows.find((r) => r.state === 'CANCELLED');
  if (cancelled) return { outcome: 'already-cancelled', delivery: cancelled };
  const ready = rows.find((r) => r.state === 'READY');
  if (!ready) {
    const acked = rows.find((r) => r.acked_at !== null);
    return acked ? { outcome: 'acknowledged', delivery: acked } : { outcome: 'not-pending' };
  }
  await trx
    .updateTable('deliveries')
    .set({ state: 'CANCELLED', cancelled_at: at, leased_until: null, envelope_header: null, envelope_cert_sha256: null, updated_at: at })
    .where('id', '=', ready.id)
    .execute();
  await purgePackageNow(trx, ready.package_id, at);
  return { outcome: 'cancelled', delivery: ready };
}

/** Crypto-shredding without waiting for retention: the chunks go, the wrapped data key is nulled. */
export async function purgePackageNow(trx: Transaction<Database>, packageId: string, at: Date): Promise<void> {
  await trx.deleteFrom('package_chunks').where('package_id', '=', packageId).execute();
  await trx.updateTable('packages').set({ status: 'PURGED', wrapped_key: null, purged_at: at }).where('id', '=', packageId).execute();
}
