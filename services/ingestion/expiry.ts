import type { Manifest } from '../../shared/crypto/asice.js';
import type { Db } from '../../shared/db/connect.js';
import { appendEvent } from '../../shared/evidence/events.js';
import { enqueue } from '../../shared/outbox/outbox.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { createDelivery } from '../../shared/storage/deliveries.js';
import { withdrawUnacknowledged } from '../../shared/storage/withdraw.js';
import type { PrintInstructions } from '../../shared/crypto/asice.js';
import { findPrintProvider } from '../../shared/registry/recipients.js';

/** The ingestion service's own queue: delayed expiry checks, one per delivery (via the outbox). */
export const INGESTION_QUEUE = 'ingestion';
export const EXPIRY_JOB = 'expire-delivery';

export interface ExpiryJob {
  messageId: string;
  deliveryId: string;
}

export type ExpiryOutcome = 'acknowledged' | 'expired' | 'print';

/**
 * Runs when a delivery's expiry time has come. Acknowledged meanwhile: nothing to do. Otherwise
 * the delivery is withdrawn and either the letter goes to print (it carried a print fallback and
 * a print provider is active: a new delivery of the same sealed package, no re-encryption) or it
 * becomes EXPIRED with an ERROR receipt. One transaction; running it twice changes nothing.
 */
export async function expireDelivery(db: Db, storage: StorageContext, job: ExpiryJob, expirySeconds: number): Promise<ExpiryOutcome> {
  return db.kysely.transaction().execute(async (trx) => {
    const delivery = await withdrawUnacknowledged(trx, job.deliveryId);
    if (!delivery) return 'acknowledged';
    const message = await trx.selectFrom('messages').selectAll().where('id', '=', job.messageId).executeTakeFirstOrThrow();
    const printer = delivery.route === 'DIGITAL' && message.print ? await findPrintProvider(trx) : undefined;
    if (!printer) {
      await appendEvent(trx, storage.hub, {
        messageId: message.id,
        senderOrgnr: message.sender_orgnr,
        type: 'ERROR',
        data: {
          reason: 'EXPIRED',
          errorType: 'SERVER',
          deliveryId: delivery.id,
          providerOrgnr: delivery.provider_orgnr,
          detail: `not acknowledged by the provider within ${expirySeconds} seconds`,
        },
      });
      return 'expired';
    }
    await appendEvent(trx, storage.hub, {
      messageId: message.id,
      senderOrgnr: message.sender_orgnr,
      type: 'FALLBACK_TO_PRINT',
      data: { reason: 'EXPIRED', fromDeliveryId: delivery.id, fromProviderOrgnr: delivery.provider_orgnr, toProviderOrgnr: printer.orgnr },
    });
    const documents = message.documents.map(({ name, mime, size, sha256 }) => ({ name, mime, size, sha256 }));
    const next = await createDelivery(trx, storage, {
      messageId: message.id,
      senderOrgnr: message.sender_orgnr,
      personId: message.person_id,
      route: 'PRINT',
      providerOrgnr: printer.orgnr,
      title: message.title,
      securityLevel: message.security_level as 3 | 4,
      availableAt: message.available_at,
      print: message.print as unknown as PrintInstructions,
      sealed: {
        packageId: delivery.package_id,
        manifestSha256: message.manifest_sha256,
        ciphertextSize: Number(delivery.package_size ?? 0),
        // Only the documents' hashes and sizes are read (for the SEALED event).
        manifest: { documents } as Manifest,
      },
    });
    await trx.updateTable('messages').set({ route: 'PRINT', provider_orgnr: printer.orgnr }).where('id', '=', message.id).execute();
    const again: ExpiryJob = { messageId: message.id, deliveryId: next.id };
    await enqueue(trx, { queue: INGESTION_QUEUE, name: EXPIRY_JOB, data: again, delayMs: expirySeconds * 1000 });
    return 'print';
  });
}
