import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { DeliveryKind, DeliveryRoute, DeliveryRow, DeliveryState } from '../../shared/db/tables/deliveries.js';
import { Problem } from '../../shared/errors/problem.js';
import { appendEvent, appendEvents, RECEIPT_TYPES } from '../../shared/evidence/events.js';
import { senderMaySee } from '../../shared/evidence/sender-view.js';
import { findMessage } from '../../shared/messages/messages.js';
import { findRecipients } from '../../shared/registry/recipients.js';
import { enqueue } from '../../shared/outbox/outbox.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { ensureEnvelope, envelopeNeeds, makeHeader, type Envelope, type EnvelopeTarget, type MadeHeader } from './envelopes.js';
import { PackageGoneError } from '../../shared/storage/packages.js';
import { movedIn } from './moves.js';
import { storageProblems } from './problems.js';
import { envelopesOrFail, leftOut, type Enveloped, type ListingHooks } from './undeliverable.js';
import { byteaColumn } from '../../shared/db/bytea-column.js';
import { suspendedProblem } from './provider-status.js';
import { checkAgainstLetter, type ProviderEvent } from './event-rules.js';

/** A delivery as its provider's operations need it, with the certificate to encrypt for. */
export interface ProviderDelivery extends EnvelopeTarget {
  messageId: string;
  senderOrgnr: string;
  personId: string;
  route: DeliveryRoute;
  mailboxAddress: string | null;
  title: string;
  securityLevel: number;
  availableAt: Date;
  print: unknown;
  state: DeliveryState;
  packageStatus: string;
  leasedUntil: Date | null;
  ackedAt: Date | null;
  /** MOVED: a delivered letter offered again after the citizen moved (services/storage/moves.ts). */
  kind?: DeliveryKind;
  originalDeliveredAt?: Date | null;
  originalOpenedAt?: Date | null;
  /** When the hub offered it to this provider's route (the sealing, or the print fallback). */
  createdAt: Date;
}

type Db = Kysely<Database> | Transaction<Database>;

/** Deliveries with their package and the recipient certificate (mailbox's own, else provider's). */
function deliveryQuery(db: Db) {
  return db
    .selectFrom('deliveries as d')
    .innerJoin('packages as p', 'p.id', 'd.package_id')
    .leftJoin('providers as pr', 'pr.orgnr', 'd.provider_orgnr')
    .leftJoin('mailboxes as m', (j) => j.onRef('m.provider_orgnr', '=', 'd.provider_orgnr').onRef('m.address', '=', 'd.mailbox_address'))
    .select([
      'd.id',
      'd.message_id as messageId',
      'd.sender_orgnr as senderOrgnr',
      'd.person_id as personId',
      'd.route',
      'd.provider_orgnr as providerOrgnr',
      'd.mailbox_address as mailboxAddress',
      'd.title',
      'd.security_level as securityLevel',
      'd.available_at as availableAt',
      'd.print_instructions as print',
      'd.state',
      'd.leased_until as leasedUntil',
      'd.acked_at as ackedAt',
      'd.kind',
      'd.original_delivered_at as originalDeliveredAt',
      'd.original_opened_at as originalOpenedAt',
      'd.created_at as createdAt',
      'd.package_id as packageId',
      'd.envelope_header as envelopeHeader',
      'd.envelope_cert_sha256 as envelopeCertSha256',
      'd.fingerprint',
      'p.status as packageStatus',
      'p.ciphertext_size as ciphertextSize',
      'p.chunk_count as chunks',
      sql<Buffer | null>`coalesce(m.certificate, pr.certificate)`.as('certificateDer'),
    ]);
}

/** The manifest's SHA-256 from the delivery's own SEALED event (the fallback's print delivery has one too). */
const sealedManifestSha256 = sql<string | null>`(select e.data->>'manifestSha256' from message_events e
   where e.message_id = d.message_id and e.type = 'SEALED' and e.data->>'deliveryId' = d.id::text limit 1)`;

type Row = Awaited<ReturnType<ReturnType<typeof deliveryQuery>['execute']>>[number];
const toDelivery = (r: Row): ProviderDelivery => ({ ...r, ciphertextSize: Number(r.ciphertextSize ?? 0), chunks: r.chunks ?? 0 });

/** A delivery its sender cancelled (services/ingestion/cancel.ts) is gone for the provider: precise 409. */
export function refuseCancelled(state: DeliveryState): void {
  if (state === 'CANCELLED') throw new Problem(storageProblems.DELIVERY_CANCELLED, 'The sender cancelled this letter before it was acknowledged');
}

/** Only the provider the delivery is addressed to finds it; anyone else gets 404, never 403. */
async function ownDelivery(db: Db, org: string, id: string, forUpdate = false): Promise<ProviderDelivery> {
  let q = deliveryQuery(db).where('d.id', '=', id).where('d.provider_orgnr', '=', org);
  if (forUpdate) q = q.forUpdate('d');
  const row = await q.executeTakeFirst();
  if (!row) throw new Problem(storageProblems.DELIVERY_NOT_FOUND, 'No delivery with this id is addressed to you');
  refuseCancelled(row.state);
  return toDelivery(row);
}

/** The stored envelope is not for the recipient's current certificate (or there is none): the listing makes one. */
const envelopeStale = sql<boolean>`(d.envelope_header is null or d.fingerprint is null
  or d.envelope_cert_sha256 is distinct from sha256(coalesce(m.certificate, pr.certificate)))`;

/**
 * Ready deliveries for `org`, oldest first, each leased for `leaseSeconds`: hidden from the next
 * listing until the lease runs out, then offered again unless acknowledged (at-least-once).
 * SKIP LOCKED lets parallel listings by one provider split the work instead of waiting.
 *
 * One transaction for the page: the locking read of the next ids, one read of the deliveries
 * with, where an envelope must be made, their packages' key material, and one update leasing
 * them and storing the new envelopes (the fingerprint hashed by Postgres over the header and the
 * one chunk of a small package). A delivery that cannot
 * be enveloped is not leased: an unusable certificate fails it (its own transaction, after),
 * any other fault leaves it out, reported through `hooks`. A larger package's envelope is made
 * after the commit (ensureEnvelopes reads its chunks), releasing its lease if that fails.
 */
export async function leaseDeliveries(ctx: StorageContext, org: string, limit: number, leaseSeconds: number, hooks: ListingHooks = {}) {
  type Leased = ProviderDelivery & { manifestSha256: string | null };
  /** Per delivery: its envelope (stored, or made and stored with the lease), made after the commit (a larger package), or why it was left out. */
  type Outcome = { envelope: Envelope } | 'later' | 'made' | { error: unknown };
  const { rows, outcomes } = await ctx.db.transaction().execute(async (trx) => {
    const ids = await trx
      .selectFrom('deliveries')
      .select('id')
      .where('provider_orgnr', '=', org)
      .where('state', '=', 'READY')
      .where((eb) => eb.or([eb('leased_until', 'is', null), eb('leased_until', '<=', sql<Date>`now()`)]))
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    if (ids.length === 0) return { rows: [] as Leased[], outcomes: [] as Outcome[] };
    // Locked by the statement before, so this one sees them as they are, and they stay so.
    const found = await deliveryQuery(trx)
      .select(sealedManifestSha256.as('manifestSha256'))
      .select([
        'p.kek_id as kekId',
        'p.wrapped_key as wrappedKey',
        'p.iv',
        // Whether the one chunk is there, not its bytes: Postgres hashes them in the lease update.
        sql<boolean>`${envelopeStale} and p.chunk_count = 1
          and exists (select 1 from package_chunks c where c.package_id = d.package_id and c.seq = 0)`.as('oneChunk'),
      ])
      .where('d.id', '=', sql<string>`any(${sql.val(ids.map((r) => r.id))}::uuid[])`)
      .orderBy('d.created_at')
      .orderBy('d.id')
      .execute();
    const rows: Leased[] = found.map((r) => ({ ...toDelivery(r), manifestSha256: r.manifestSha256 }));
    const made: (MadeHeader | undefined)[] = [];
    const outcomes = envelopeNeeds(rows).map((need, i): Outcome => {
      if (!('cert' in need)) return need;
      const r = found[i]!;
      // Only a one-chunk package is enveloped here; a larger one after the commit (its chunks are read then).
      if (!r.oneChunk || r.chunks !== 1) return 'later';
      try {
        made[i] = makeHeader(ctx, rows[i]!, need.cert, { status: r.packageStatus, kekId: r.kekId, wrappedKey: r.wrappedKey, iv: r.iv });
        return 'made';
      } catch (err) {
        return { error: err };
      }
    });
    const lease = rows.flatMap((_, i) => { const o = outcomes[i]!; return o === 'later' || o === 'made' || 'envelope' in o ? [i] : []; });
    if (lease.length === 0) return { rows, outcomes };
    const empty = Buffer.alloc(0);
    const headers = byteaColumn(lease.map((i) => made[i]?.header ?? empty));
    const certs = byteaColumn(lease.map((i) => made[i]?.certSha256 ?? empty));
    // The fingerprint (SHA-256 of header and ciphertext) is computed by Postgres, which has the
    // chunk at hand: its 10 KB need not travel to Node as hex only to be hashed. A made header
    // whose chunk has gone meanwhile is neither stored nor leased (it is left out below).
    const { rows: leased } = await sql<{ id: string; leased_until: Date; fingerprint: Buffer | null }>`
      update deliveries d
         set leased_until = now() + make_interval(secs => ${leaseSeconds}), lease_count = d.lease_count + 1,
             envelope_header = case when x.h_len > 0 then x.h else d.envelope_header end,
             envelope_cert_sha256 = case when x.h_len > 0 then x.c else d.envelope_cert_sha256 end,
             fingerprint = case when x.h_len > 0 then sha256(x.h || x.chunk) else d.fingerprint end
        from (select u.id, u.h_len, ${headers.element('h')} as h, ${certs.element('c')} as c, ch.data as chunk
                from unnest(${sql.val(lease.map((i) => rows[i]!.id))}::uuid[], ${sql.val(lease.map((i) => rows[i]!.packageId))}::uuid[],
                            ${headers.offsets}, ${headers.lengths}, ${certs.offsets}, ${certs.lengths})
                  as u(id, package_id, h_off, h_len, c_off, c_len)
                left join package_chunks ch on u.h_len > 0 and ch.package_id = u.package_id and ch.seq = 0) x
       where d.id = x.id and (x.h_len = 0 or x.chunk is not null)
      returning d.id, d.leased_until, d.fingerprint`.execute(trx);
    const byId = new Map(leased.map((r) => [r.id, r]));
    for (const i of lease) {
      const d = rows[i]!;
      const r = byId.get(d.id);
      const h = made[i];
      if (h && !r?.fingerprint) {
        outcomes[i] = { error: new PackageGoneError(`package ${d.packageId} has no ciphertext`) };
        continue;
      }
      d.leasedUntil = r?.leased_until ?? d.leasedUntil;
      if (h) {
        Object.assign(d, { envelopeHeader: h.header, envelopeCertSha256: h.certSha256, fingerprint: r!.fingerprint });
        outcomes[i] = { envelope: { header: h.header, fingerprint: r!.fingerprint!, size: h.header.length + d.ciphertextSize } };
      }
    }
    return { rows, outcomes };
  });

  // One delivery that cannot be enveloped never fails the others (docs/storage.md).
  const results: Enveloped<Leased>[] = new Array(rows.length);
  const bad: number[] = [];
  const later: number[] = [];
  rows.forEach((d, i) => {
    const o = outcomes[i]!;
    if (o === 'later') later.push(i);
    else if (o !== 'made' && 'envelope' in o) results[i] = { delivery: d, envelope: o.envelope };
    else bad.push(i);
  });
  // Not leased: an unusable certificate fails the delivery, another fault is reported.
  const settled = await leftOut(ctx, bad.map((i) => rows[i]!), bad.map((i) => (outcomes[i] as { error?: unknown }).error), hooks, { leased: false });
  bad.forEach((i, k) => (results[i] = settled[k]!));
  if (later.length > 0) {
    const enveloped = await envelopesOrFail(ctx, later.map((i) => rows[i]!), hooks);
    later.forEach((i, k) => (results[i] = enveloped[k]!));
  }
  const ready = results.filter((r): r is Extract<Enveloped<Leased>, { envelope: Envelope }> => 'envelope' in r);
  const errored = results.find((r): r is Extract<Enveloped<Leased>, { error: unknown }> => 'error' in r);
  // Nothing to give and something broke (the database, say): an error, holding no lease.
  if (ready.length === 0 && errored) throw errored.error;
  return ready;
}

/**
 * The download's one query, a named prepared statement (planned once per connection): the
 * delivery if it is addressed to `org`, its package, the provider's status, whether the stored
 * envelope is for the recipient's current certificate, and the first ciphertext chunk, so a
 * small package needs no second round trip. The certificate itself is sent only when the
 * envelope must be made again (a download before any listing, a new certificate): otherwise
 * Postgres compares its SHA-256 with the envelope's, and the download reads only what it sends.
 */
const PULL_QUERY = `
  select d.id, d.state, d.provider_orgnr, d.package_id, d.envelope_header, d.fingerprint,
         p.status as package_status, p.ciphertext_size, p.chunk_count, pr.status as provider_status, x.current,
         case when not x.current then d.envelope_cert_sha256 end as envelope_cert_sha256,
         case when not x.current then x.certificate end as certificate,
         (select c.data from package_chunks c where c.package_id = d.package_id and c.seq = 0) as first_chunk
    from deliveries d
    join packages p on p.id = d.package_id
    left join providers pr on pr.orgnr = d.provider_orgnr
    left join mailboxes m on m.provider_orgnr = d.provider_orgnr and m.address = d.mailbox_address
    cross join lateral (select coalesce(m.certificate, pr.certificate) as certificate) c0
    cross join lateral (select c0.certificate, coalesce(d.envelope_header is not null and d.fingerprint is not null
                                                        and d.envelope_cert_sha256 = sha256(c0.certificate), false) as current) x
   where d.id = $1 and d.provider_orgnr = $2`;

/** What the pull query reads. */
type PullRow = Pick<DeliveryRow, 'id' | 'state' | 'provider_orgnr' | 'package_id' | 'envelope_header' | 'envelope_cert_sha256' | 'fingerprint'> & {
  package_status: string;
  ciphertext_size: string | null;
  chunk_count: number | null;
  provider_status: string | null;
  current: boolean;
  certificate: Buffer | null;
  first_chunk: Buffer | null;
};

export interface Pull {
  delivery: EnvelopeTarget;
  envelope: Envelope;
  /** Chunk 0 of the ciphertext when the package has any (already read with the delivery). */
  firstChunk: Buffer | null;
}

export async function packageFor(ctx: StorageContext, org: string, id: string): Promise<Pull> {
  const { rows } = await ctx.pool.query({ name: 'storage-pull', text: PULL_QUERY, values: [id, org] });
  const r = rows[0] as PullRow | undefined;
  if (!r) throw new Problem(storageProblems.DELIVERY_NOT_FOUND, 'No delivery with this id is addressed to you');
  if (r.provider_status === 'suspended') throw suspendedProblem();
  refuseCancelled(r.state);
  if (r.package_status !== 'SEALED') throw new Problem(storageProblems.PACKAGE_PURGED, 'The hub keeps evidence, not letters: this package was purged after acknowledgement');
  const delivery: EnvelopeTarget = {
    id: r.id,
    providerOrgnr: r.provider_orgnr,
    packageId: r.package_id,
    envelopeHeader: r.envelope_header,
    envelopeCertSha256: r.envelope_cert_sha256,
    fingerprint: r.fingerprint,
    ciphertextSize: Number(r.ciphertext_size ?? 0),
    chunks: r.chunk_count ?? 0,
    certificateDer: r.certificate,
  };
  const envelope =
    r.current && r.envelope_header && r.fingerprint
      ? { header: r.envelope_header, fingerprint: r.fingerprint, size: r.envelope_header.length + delivery.ciphertextSize }
      : await ensureEnvelope(ctx, delivery);
  return { delivery, envelope, firstChunk: r.first_chunk };
}

const ACKED_STATE: Record<DeliveryRoute, DeliveryState> = { DIGITAL: 'DELIVERED', PRINT: 'PRINT_ACCEPTED' };

export interface DeliveryStatus {
  id: string;
  messageId: string;
  state: DeliveryState;
  ackedAt: Date | null;
}

const status = (d: Pick<ProviderDelivery, 'id' | 'messageId' | 'state' | 'ackedAt'>): DeliveryStatus => ({ id: d.id, messageId: d.messageId, state: d.state, ackedAt: d.ackedAt });

/** A digital delivery's DELIVERED/OPENED wake the alert scheduling (same transaction). */
async function notifyAlerts(trx: Transaction<Database>, d: ProviderDelivery, type: string): Promise<void> {
  if (d.route === 'DIGITAL') await enqueue(trx, { queue: 'notification', name: 'delivery-event', data: { messageId: d.messageId, type } });
}

/** DELIVERED (digital) or PRINT_ACCEPTED (print); acknowledging again changes nothing. */
export async function acknowledge(ctx: StorageContext, org: string, id: string): Promise<DeliveryStatus> {
  const [result] = await acknowledgeMany(ctx, org, [id]);
  if (result!.problem) throw result!.problem;
  return result!.status!;
}

/** One id's answer in a batch acknowledgement: its status, or the problem a single ack would have given. */
export interface AckResult {
  id: string;
  status?: DeliveryStatus;
  problem?: Problem;
}

/**
 * Acknowledges many deliveries in one transaction whatever their number: one locking read, one
 * update, the evidence events (appendEvents: four statements for all) and the alert jobs (one
 * insert). Each id is answered as a single acknowledgement would be: acknowledging again
 * changes nothing, an unknown or foreign id is not found, a failed delivery is refused; one
 * bad id does not stop the others.
 */
export async function acknowledgeMany(ctx: StorageContext, org: string, ids: readonly string[]): Promise<AckResult[]> {
  return ctx.db.transaction().execute(async (trx) => {
    const unique = [...new Set(ids)].sort(); // locked in id order: two batches never wait on each other in a cycle
    // Only what an acknowledgement reads (no package, certificate or envelope: the listing's query
    // would send each row's certificate and CMS header as hex for nothing).
    const rows = await trx
      .selectFrom('deliveries')
      .select(['id', 'message_id as messageId', 'sender_orgnr as senderOrgnr', 'route', 'state', 'kind', 'acked_at as ackedAt', 'fingerprint'])
      .where('id', '=', sql<string>`any(${sql.val(unique)}::uuid[])`)
      .where('provider_orgnr', '=', org)
      .orderBy('id')
      .forUpdate()
      .execute();
    const found = new Map(rows.map((r) => [r.id, r]));
    const ackedAt = new Date();
    const ready = [...found.values()].filter((d) => d.state === 'READY');
    // A moved letter (services/storage/moves.ts) was delivered in law long ago: MOVED_IN on the
    // chain instead of DELIVERED, no receipt, no alert.
    const moved = ready.filter((d) => d.kind === 'MOVED');
    const fresh = ready.filter((d) => d.kind !== 'MOVED');
    for (const d of moved) await movedIn(trx, ctx, { id: d.id, messageId: d.messageId, senderOrgnr: d.senderOrgnr, providerOrgnr: org }, ackedAt);
    if (ready.length > 0) {
      await sql`update deliveries set state = case route when 'DIGITAL' then 'DELIVERED' else 'PRINT_ACCEPTED' end,
                  acked_at = ${ackedAt}, leased_until = null, updated_at = ${ackedAt}
                where id = any(${sql.val(ready.map((d) => d.id))}::uuid[])`.execute(trx);
      await appendEvents(
        trx,
        ctx.hub,
        fresh.map((d) => ({
          messageId: d.messageId,
          senderOrgnr: d.senderOrgnr,
          type: ACKED_STATE[d.route],
          at: ackedAt,
          data: { deliveryId: d.id, providerOrgnr: org, fingerprint: d.fingerprint?.toString('hex') ?? null },
        })),
      );
      const digital = fresh.filter((d) => d.route === 'DIGITAL');
      if (digital.length > 0) await enqueue(trx, digital.map((d) => ({ queue: 'notification', name: 'delivery-event', data: { messageId: d.messageId, type: 'DELIVERED' } })));
    }
    return ids.map((id): AckResult => {
      const d = found.get(id);
      if (!d) return { id, problem: new Problem(storageProblems.DELIVERY_NOT_FOUND, 'No delivery with this id is addressed to you') };
      if (d.state === 'FAILED') return { id, problem: new Problem(storageProblems.INVALID_TRANSITION, 'The delivery was reported as failed') };
      // Cancelled by its sender (services/ingestion/cancel.ts) under the same row lock: the ack lost.
      if (d.state === 'CANCELLED') return { id, problem: new Problem(storageProblems.DELIVERY_CANCELLED, 'The sender cancelled this letter before it was acknowledged') };
      if (d.state === 'READY') return { id, status: status({ ...d, state: ACKED_STATE[d.route], ackedAt }) };
      return { id, status: status(d) };
    });
  });
}

export type { ProviderEvent };

/** Which states each reported event may follow, per route; reporting the current state again is a no-op. */
const TRANSITIONS: Record<DeliveryRoute, Partial<Record<ProviderEvent['type'], DeliveryState[]>>> = {
  DIGITAL: { OPENED: ['DELIVERED'], FAILED: ['READY', 'DELIVERED'] },
  PRINT: { PRINTED: ['PRINT_ACCEPTED'], RETURNED: ['PRINT_ACCEPTED', 'PRINTED'], FAILED: ['READY', 'PRINT_ACCEPTED'] },
};

/**
 * Whether the sender gets a receipt for this event: every sender-facing type does, except an
 * OPENED the letter did not ask for (openReceipt false); the chain records it either way.
 */
async function senderGetsReceipt(trx: Transaction<Database>, messageId: string, type: string): Promise<boolean> {
  if (RECEIPT_TYPES[type] === undefined) return false;
  // Only what the open-receipt rule can hide needs the letter read.
  if (senderMaySee(type, { openReceipt: false })) return true;
  const letter = await findMessage(trx, messageId);
  return senderMaySee(type, { openReceipt: letter?.openReceipt ?? false });
}

export async function reportEvent(ctx: StorageContext, org: string, id: string, ev: ProviderEvent, now = new Date()): Promise<DeliveryStatus> {
  return ctx.db.transaction().execute(async (trx) => {
    const d = await ownDelivery(trx, org, id, true);
    const allowed = TRANSITIONS[d.route][ev.type];
    if (!allowed) throw new Problem(storageProblems.INVALID_TRANSITION, `${ev.type} does not apply to a ${d.route.toLowerCase()} delivery`);
    checkAgainstLetter(d, ev, now);
    const target = ev.type as DeliveryState;
    if (d.state === target) return status(d);
    if (!allowed.includes(d.state)) throw new Problem(storageProblems.INVALID_TRANSITION, `${ev.type} cannot follow ${d.state}`);
    await trx
      .updateTable('deliveries')
      .set({ state: target, leased_until: null, updated_at: now, ...(d.state === 'READY' ? { acked_at: now } : {}), ...(ev.type === 'OPENED' ? { opened_at: new Date(ev.at) } : {}) })
      .where('id', '=', d.id)
      .execute();
    const { type, ...data } = ev;
    // A moved letter opened again at the new provider: OPENED (and its receipt) only if it never was before.
    const moved = d.kind === 'MOVED';
    await appendEvents(trx, ctx.hub, [
      {
        messageId: d.messageId,
        senderOrgnr: d.senderOrgnr,
        type,
        at: now,
        data: { deliveryId: d.id, providerOrgnr: org, ...data },
        receipt: await senderGetsReceipt(trx, d.messageId, type),
        once: moved && type === 'OPENED',
      },
    ]);
    if (type === 'OPENED' && !moved) await notifyAlerts(trx, d, type);
    return status({ ...d, state: target, ackedAt: d.state === 'READY' ? now : d.ackedAt });
  });
}

export interface MailboxChanged {
  personId: string;
  providerOrgnr: string | null;
  mailboxAddress: string | null;
}

/**
 * A person's active mailbox moved: their digital deliveries not yet acknowledged follow it
 * (REROUTED), losing their old envelope; the new provider's next pull wraps the same stored
 * ciphertext for its own certificate. The job is only a trigger: the target is the registry's
 * current active mailbox, so jobs that arrive twice or out of order still end at the right
 * place. Without an active digital mailbox (closed, deleted) pending deliveries stay put.
 */
export async function readdress(ctx: StorageContext, change: Pick<MailboxChanged, 'personId'>): Promise<number> {
  const recipient = (await findRecipients(ctx.db, [change.personId], { certificates: false })).get(change.personId);
  const target = recipient?.mailbox?.providerKind === 'digital' ? recipient.mailbox : undefined;
  if (!target) return 0;
  const { providerOrgnr, address: mailboxAddress } = target;
  return ctx.db.transaction().execute(async (trx) => {
    const moved = await trx
      .selectFrom('deliveries')
      .select(['id', 'message_id', 'sender_orgnr', 'provider_orgnr', 'mailbox_address'])
      .where('person_id', '=', change.personId)
      .where('state', '=', 'READY')
      .where('route', '=', 'DIGITAL')
      .where((eb) => eb.or([eb('provider_orgnr', '!=', providerOrgnr), eb('mailbox_address', '!=', mailboxAddress), eb('mailbox_address', 'is', null)]))
      .orderBy('id')
      .forUpdate()
      .execute();
    if (moved.length === 0) return 0;
    await trx
      .updateTable('deliveries')
      .set({
        provider_orgnr: providerOrgnr,
        mailbox_address: mailboxAddress,
        envelope_header: null,
        envelope_cert_sha256: null,
        fingerprint: null,
        leased_until: null,
        updated_at: new Date(),
      })
      .where('id', 'in', moved.map((m) => m.id))
      .execute();
    for (const m of moved) {
      await appendEvent(trx, ctx.hub, {
        messageId: m.message_id,
        senderOrgnr: m.sender_orgnr,
        type: 'REROUTED',
        data: { deliveryId: m.id, fromProviderOrgnr: m.provider_orgnr, toProviderOrgnr: providerOrgnr },
      });
    }
    return moved.length;
  });
}
