import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import type { DeliveryRoute } from '../db/tables/deliveries.js';
import type { PrintInstructions } from '../crypto/asice.js';
import { appendEvent, firstEvent } from '../evidence/events.js';
import type { StorageContext } from './context.js';
import { pendingPackageCtes, writePendingPackage, type SealedPackage } from './packages.js';

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
  sealed: Pick<SealedPackage, 'packageId' | 'manifestSha256' | 'ciphertextSize' | 'manifest' | 'pending'>;
  /**
   * The message was created in the caller's transaction and has no events yet: the SEALED event
   * is its first (seq 1), written with the delivery in one statement, without the chain lock.
   */
  newMessage?: boolean;
}

export class DeliveryInputError extends Error {
  override name = 'DeliveryInputError';
}

/**
 * Makes a sealed package available to its provider: the delivery row and the first evidence
 * event (SEALED, with the documents' hashes), in the caller's transaction (and the package
 * itself when sealPackage deferred its write).
 */
export async function createDelivery(trx: Transaction<Database> | Kysely<Database>, ctx: Pick<StorageContext, 'hub'>, input: CreateDelivery): Promise<{ id: string; seq: number }> {
  if (input.route === 'DIGITAL' && !input.mailboxAddress) throw new DeliveryInputError('a digital delivery needs a mailbox address');
  if (input.route === 'PRINT' && !input.print) throw new DeliveryInputError('a print delivery needs print instructions');
  const id = input.id ?? randomUUID();
  const row = {
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
  };
  const sealedEvent = {
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
  };
  if (input.newMessage) {
    const first = firstEvent(sealedEvent);
    const e = first.row;
    // A deferred package (sealPackage's deferWrite) is written by the same statement.
    const pending = input.sealed.pending;
    await sql`
      with ${pending ? sql`${pendingPackageCtes(pending)},` : sql``} d as (
        insert into deliveries (id, message_id, sender_orgnr, person_id, route, provider_orgnr, mailbox_address, title, security_level,
                                available_at, print_instructions, package_id, package_size)
        values (${row.id}, ${row.message_id}, ${row.sender_orgnr}, ${row.person_id}, ${row.route}, ${row.provider_orgnr}, ${row.mailbox_address},
                ${row.title}, ${row.security_level}, ${row.available_at}, ${row.print_instructions}, ${row.package_id}, ${row.package_size}))
      insert into message_events (message_id, seq, type, at, data, prev_hash, hash)
      values (${e.message_id}, ${e.seq}, ${e.type}, ${e.at}, ${e.data}, ${e.prev_hash}, ${e.hash})`.execute(trx);
    return { id, seq: first.seq };
  }
  if (input.sealed.pending) await writePendingPackage(trx, input.sealed.pending);
  await trx.insertInto('deliveries').values(row).execute();
  const event = await appendEvent(trx, ctx.hub, sealedEvent);
  return { id, seq: event.seq };
}
