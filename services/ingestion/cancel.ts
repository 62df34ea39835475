import type { Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { appendEvent, LIFECYCLE_EVENTS } from '../../shared/evidence/events.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { cancelUnacknowledged } from '../../shared/storage/withdraw.js';
import { ingestionProblems } from './problems.js';

export interface Cancelled {
  id: string;
  status: 'CANCELLED';
  cancelledAt: string;
  receiptId: string | null;
  replayed: boolean;
}

/**
 * DELETE /v1/messages/{id}: the sender withdraws a letter no provider has acknowledged. One
 * transaction: the message's deliveries are locked (the row lock a provider's ack also takes,
 * so exactly one of a racing cancel and ack wins), the pending delivery becomes CANCELLED and
 * leaves every listing, its package is purged at once, and a CANCELLED event with its receipt
 * is appended. Alerts are planned only when a provider acknowledges, so a cancelled letter has
 * none to call off. Cancelling again answers the first cancellation. Another sender's letter is
 * 404, like every read.
 */
export async function cancelMessage(db: Kysely<Database>, storage: StorageContext, org: string, id: string, now = new Date()): Promise<Cancelled> {
  await storage.hub.signingKey(); // a cold key load must not need a second connection inside the transaction
  return db.transaction().execute(async (trx) => {
    const message = await trx.selectFrom('messages').select(['id', 'sender_orgnr']).where('id', '=', id).where('sender_orgnr', '=', org).executeTakeFirst();
    if (!message) throw new Problem(ingestionProblems.MESSAGE_NOT_FOUND, 'No message with this id was sent by you');
    const result = await cancelUnacknowledged(trx, id, now);
    switch (result.outcome) {
      case 'acknowledged':
        throw new Problem(ingestionProblems.ALREADY_DELIVERED, 'A provider has acknowledged this letter; it can no longer be cancelled', {
          deliveryState: result.delivery.state,
          acknowledgedAt: result.delivery.acked_at?.toISOString() ?? null,
        });
      case 'not-pending':
        throw new Problem(ingestionProblems.NOT_CANCELLABLE, 'The letter is no longer pending (it expired or failed), so there is nothing to cancel');
      case 'already-cancelled': {
        const receipt = await trx.selectFrom('receipts').select('id').where('message_id', '=', id).where('type', '=', 'CANCELLED').executeTakeFirst();
        return { id, status: 'CANCELLED', cancelledAt: (result.delivery.cancelled_at ?? result.delivery.updated_at).toISOString(), receiptId: receipt?.id ?? null, replayed: true };
      }
      case 'cancelled': {
        const d = result.delivery;
        const event = await appendEvent(trx, storage.hub, {
          messageId: id,
          senderOrgnr: org,
          type: LIFECYCLE_EVENTS.CANCELLED,
          at: now,
          data: { deliveryId: d.id, providerOrgnr: d.provider_orgnr, route: d.route, reason: 'CANCELLED_BY_SENDER' },
        });
        return { id, status: 'CANCELLED', cancelledAt: now.toISOString(), receiptId: event.receipt?.id ?? null, replayed: false };
      }
    }
  });
}
