import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import type { DeliveryRoute } from '../db/tables/deliveries.js';
import type { PrintInstructions } from '../crypto/asice.js';
import { appendEvent } from '../evidence/events.js';
import type { StorageContext } from './context.js';
import type { SealedPackage } from './packages.js';

export interface CreateDelivery {
  /** Defaults to a random UUID. */
  id?: string;
  messageId: string;
  senderOrgnr: string;
  personId: string;
  route: DeliveryRoute;
  /** The digital mailbox provider, or the print provider. */
  providerOrgnr: string;
  /** Required for DIGITAL. */
  mailboxAddress?: string | null;
  title: string;
  securityLevel: 3 | 4;
  availableAt: Date;
  /** Required for PRINT. */
  print?: PrintInstructions | null;
  sealed: Pick<SealedPackage, 'packageId' | 'manifestSha256' | 'ciphertextSize' | 'manifest'>;
}

export class DeliveryInputError extends Error {
  override name = 'DeliveryInputError';
}

/**
 * Makes a sealed package available to its provider: the delivery row and the first evidence
 * event (SEALED, with the documents' hashes), in the caller's transaction.
 */
export async function createDelivery(trx: Transaction<Database> | Kysely<Database>, ctx: Pick<StorageContext, 'hub'>, input: CreateDelivery): Promise<{ id: string; seq: number }> {
  if (input.route === 'DIGITAL' && !input.mailboxAddress) throw new DeliveryInputError('a digital delivery needs a mailbox address');
  if (input.route === 'PRINT' && !input.print) throw new DeliveryInputError('a print delivery needs print instructions');
  const id = input.id ?? randomUUID();
  await trx
    .insertInto('deliveries')
    .values({
      id,
      message_id: input.messageId,
      sender_orgnr: input.senderOrgnr,
      person_id: input.personId,
      route: input.route,
      provider_orgnr: input.providerOrgnr,
      mailbox_address: input.route === 'DIGITAL' ? input.mailboxAddress! : null,
      title: input.title,
      security_level: input.securityLevel,
      available_at: input.availableAt,
      print_instructions: input.route === 'PRINT' ? JSON.stringify(input.print) : null,
      package_id: input.sealed.packageId,
      package_size: input.sealed.ciphertextSize,
    })
    .execute();
  const event = await appendEvent(trx, ctx.hub, {
    messageId: input.messageId,
    senderOrgnr: input.senderOrgnr,
    type: 'SEALED',
    data: {
      deliveryId: id,
      route: input.route,
      providerOrgnr: input.providerOrgnr,
      packageId: input.sealed.packageId,
      manifestSha256: input.sealed.manifestSha256,
      documents: input.sealed.manifest.documents.map((d) => ({ sha256: d.sha256, size: d.size })),
    },
  });
  return { id, seq: event.seq };
}
