import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { byteaColumn } from '../db/bytea-column.js';
import type { Database } from '../db/database.js';
import type { DeliveryRoute } from '../db/tables/deliveries.js';
import type { PrintInstructions } from '../crypto/asice.js';
import { appendEvent, firstEvent, insertFirstEventsSql } from '../evidence/events.js';
import type { StorageContext } from './context.js';
import { writePendingPackage, type PendingPackage, type SealedPackage } from './packages.js';

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
   * The delivery expires this long after the transaction's now() (`expires_at`, taken by the
   * ingestion service's expiry sweep while it is still READY); absent or null: it never expires.
   */
  expiresInSeconds?: number | null;
  /**
   * The message was created in the caller's transaction and has no events yet: the SEALED event
   * is its first (seq 1), written with the delivery in one statement, without the chain lock.
   */
  newMessage?: boolean;
}

export class DeliveryInputError extends Error {
  override name = 'DeliveryInputError';
}

/** The delivery row and SEALED event of one input (validated). */
function deliveryParts(input: CreateDelivery) {
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
  const expiresIn = input.expiresInSeconds ?? null;
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
  return { id, row, expiresIn, sealedEvent };
}

type DeliveryRow = ReturnType<typeof deliveryParts>['row'];

/**
 * Deliveries of messages created in the caller's statement (`newMessage`), set-based: CTEs `p`
 * (the packages whose write was deferred), `c` (their one chunk each), `d` (the deliveries, with
 * their `expires_at` from each one's expiresInSeconds and the statement's now()) and
 * `e` (each message's first event, SEALED, seq 1), to lead or join the caller's larger
 * statement. One array per column, so the text is the same for any number of deliveries (the
 * group commit prepares it once per connection).
 */
export function newDeliveriesCtes(inputs: readonly CreateDelivery[]) {
  const parts = inputs.map(deliveryParts);
  const pending = inputs.map((i) => i.sealed.pending).filter((p): p is PendingPackage => p !== undefined);
  const col = <K extends keyof DeliveryRow>(k: K) => sql.val(parts.map((p) => p.row[k]));
  const expiresIn = sql.val(parts.map((p) => p.expiresIn));
  const pcol = <K extends keyof PendingPackage>(k: K) => sql.val(pending.map((p) => p[k]));
  const events = parts.map((p) => firstEvent(p.sealedEvent));
  const wrapped = byteaColumn(pending.map((p) => p.wrappedKey));
  const iv = byteaColumn(pending.map((p) => p.iv));
  const data = byteaColumn(pending.map((p) => p.data));
  const ctes = sql`
  p as (
    insert into packages (id, status, kek_id, wrapped_key, iv, zip_size, ciphertext_size, chunk_count, sealed_at)
    select id, 'SEALED', kek_id, ${wrapped.element('wk')}, ${iv.element('iv')}, zip_size, ciphertext_size, 1, now()
      from unnest(${pcol('id')}::uuid[], ${pcol('kekId')}::text[], ${wrapped.offsets}, ${wrapped.lengths}, ${iv.offsets}, ${iv.lengths},
                  ${pcol('zipSize')}::bigint[], ${pcol('ciphertextSize')}::bigint[]) as x(id, kek_id, wk_off, wk_len, iv_off, iv_len, zip_size, ciphertext_size)
    returning id),
  c as (
    insert into package_chunks (package_id, seq, data)
    select id, 0, ${data.element('data')} from unnest(${pcol('id')}::uuid[], ${data.offsets}, ${data.lengths}) as x(id, data_off, data_len)),
  d as (
    insert into deliveries (id, message_id, sender_orgnr, person_id, route, provider_orgnr, mailbox_address, title, security_level,
                            available_at, print_instructions, package_id, package_size, expires_at)
    select id, message_id, sender_orgnr, person_id, route, provider_orgnr, mailbox_address, title, security_level,
           available_at, print_instructions, package_id, package_size, now() + make_interval(secs => expires_in)
      from unnest(${col('id')}::uuid[], ${col('message_id')}::uuid[], ${col('sender_orgnr')}::text[], ${col('person_id')}::text[],
                  ${col('route')}::text[], ${col('provider_orgnr')}::text[], ${col('mailbox_address')}::text[], ${col('title')}::text[],
                  ${col('security_level')}::smallint[], ${col('available_at')}::timestamptz[], ${col('print_instructions')}::jsonb[],
                  ${col('package_id')}::uuid[], ${col('package_size')}::bigint[], ${expiresIn}::int[])
           as x(id, message_id, sender_orgnr, person_id, route, provider_orgnr, mailbox_address, title, security_level,
                available_at, print_instructions, package_id, package_size, expires_in)),
  e as (${insertFirstEventsSql(events.map((e) => e.row))})`;
  return { ctes, created: parts.map((p, i) => ({ id: p.id, seq: events[i]!.seq })) };
}

/**
 * Makes a sealed package available to its provider: the delivery row and the first evidence
 * event (SEALED, with the documents' hashes), in the caller's transaction (and the package
 * itself when sealPackage deferred its write).
 */
export async function createDelivery(trx: Transaction<Database> | Kysely<Database>, ctx: Pick<StorageContext, 'hub'>, input: CreateDelivery): Promise<{ id: string; seq: number }> {
  if (input.newMessage) {
    const { ctes, created } = newDeliveriesCtes([input]);
    await sql`with ${ctes} select 1`.execute(trx);
    return created[0]!;
  }
  const { id, row, expiresIn, sealedEvent } = deliveryParts(input);
  if (input.sealed.pending) await writePendingPackage(trx, input.sealed.pending);
  const expiresAt = expiresIn === null ? null : sql<Date>`now() + make_interval(secs => ${expiresIn}::int)`;
  await trx.insertInto('deliveries').values({ ...row, expires_at: expiresAt }).execute();
  const event = await appendEvent(trx, ctx.hub, sealedEvent);
  return { id, seq: event.seq };
}
