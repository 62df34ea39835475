import { createHash, randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { MoveItemState, MoveState } from '../../shared/db/tables/moves.js';
import { Problem } from '../../shared/errors/problem.js';
import { CmsError, decryptContent, openEnvelope } from '../../shared/crypto/cms-open.js';
import { hubTransportKey } from '../../shared/crypto/transport-key.js';
import { readZip, ZipReadError } from '../../shared/crypto/zip-read.js';
import { appendEvent, appendEvents, LIFECYCLE_EVENTS } from '../../shared/evidence/events.js';
import { findRecipients } from '../../shared/registry/recipients.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { PostgresBlobStore } from '../../shared/storage/blob-store.js';
import { MOVE_NOTICE_JOB, type MoveNoticeJob } from '../../shared/storage/move-outcome.js';
import { enqueue } from '../../shared/outbox/outbox.js';
import { dataKeyContext } from '../../shared/storage/packages.js';
import { storageProblems } from './problems.js';

/**
 * Moving delivered mail (flyttet digitalpost, docs/storage.md): a citizen who switched provider
 * asks the hub to move the letters the old provider holds. The old provider sees one export
 * request per letter in its feed, seals each letter (the package it received) for the hub's
 * transport certificate and uploads it; the hub checks it is the letter it sent (manifest hash
 * from the SEALED event, every document's hash) and offers it to the new provider as a delivery
 * of kind MOVED with the original times. No alert, no expiry, no sender receipt: MOVED_OUT and
 * MOVED_IN go on the letter's chain only.
 */

/** Digital deliveries a provider holds for the citizen: acknowledged and not moved away since. */
const HELD_STATES = ['DELIVERED', 'OPENED'] as const;

export interface MoveItemView {
  id: string;
  messageId: string;
  fromProviderOrgnr: string;
  state: MoveItemState;
  reason: string | null;
  newDeliveryId: string | null;
}

export interface MoveView {
  id: string;
  state: MoveState;
  failureReason: string | null;
  toProviderOrgnr: string;
  fromProviderOrgnrs: string[];
  createdAt: Date;
  deadlineAt: Date;
  finishedAt: Date | null;
  letters: number;
  moved: number;
  missing: number;
  failed: number;
  pending: number;
  items: MoveItemView[];
  /** What the citizen is told about the outcome, once there is one. */
  notice: string | null;
}

type Db = Kysely<Database> | Transaction<Database>;

function notice(state: MoveState, c: { moved: number; missing: number; failed: number }): string | null {
  switch (state) {
    case 'IN_PROGRESS':
      return null;
    case 'COMPLETED':
      return c.missing > 0
        ? `${c.moved} letters were moved to your new mailbox; ${c.missing} were no longer at your previous provider (deleted) and could not be moved.`
        : `All ${c.moved} letters were moved to your new mailbox.`;
    case 'PARTIAL':
      return `${c.moved} letters were moved; your previous provider did not hand over ${c.failed} in time. They are still with your previous provider.`;
    case 'FAILED':
      return `The move failed: your previous provider did not hand over your letters in time (${c.failed}). They are still with your previous provider; you may ask again.`;
  }
}

export async function moveView(db: Db, moveId: string): Promise<MoveView | undefined> {
  const move = await db.selectFrom('moves').selectAll().where('id', '=', moveId).executeTakeFirst();
  if (!move) return undefined;
  const items = await db.selectFrom('move_items').selectAll().where('move_id', '=', moveId).orderBy('id').execute();
  const count = (s: MoveItemState) => items.filter((i) => i.state === s).length;
  const c = { moved: count('MOVED'), missing: count('MISSING'), failed: count('FAILED'), pending: count('PENDING') };
  return {
    id: move.id,
    state: move.state,
    failureReason: move.failure_reason,
    toProviderOrgnr: move.to_provider_orgnr,
    fromProviderOrgnrs: [...new Set(items.map((i) => i.from_provider_orgnr))].sort(),
    createdAt: move.created_at,
    deadlineAt: move.deadline_at,
    finishedAt: move.finished_at,
    letters: items.length,
    ...c,
    items: items.map((i) => ({ id: i.id, messageId: i.message_id, fromProviderOrgnr: i.from_provider_orgnr, state: i.state, reason: i.reason, newDeliveryId: i.new_delivery_id })),
    notice: notice(move.state, c),
  };
}

const isUniqueViolation = (err: unknown, index: string) => (err as { code?: string }).code === '23505' && String((err as { constraint?: string }).constraint ?? '') === index;

/**
 * The citizen's request. The target is their current active digital mailbox; the letters are
 * every acknowledged digital delivery of theirs at any other provider. One unfinished move per
 * person (a partial unique index decides between two requests at once).
 */
export async function requestMove(ctx: StorageContext, personId: string, opts: { timeoutSeconds: number; now?: Date }): Promise<MoveView> {
  const now = opts.now ?? new Date();
  const recipient = (await findRecipients(ctx.db, [personId], { certificates: false, now })).get(personId);
  const target = recipient?.mailbox?.providerKind === 'digital' ? recipient.mailbox : undefined;
  if (!target) throw new Problem(storageProblems.NO_ACTIVE_MAILBOX, 'Choose your new mailbox first: letters are moved to your active digital mailbox');
  const moveId = randomUUID();
  try {
    await ctx.db.transaction().execute(async (trx) => {
      const open = await trx.selectFrom('moves').select('id').where('person_id', '=', personId).where('state', '=', 'IN_PROGRESS').executeTakeFirst();
      if (open) throw new Problem(storageProblems.MOVE_IN_PROGRESS, 'A move of your letters is already in progress', { moveId: open.id });
      const held = await trx
        .selectFrom('deliveries')
        .select(['id', 'message_id', 'provider_orgnr'])
        .where('person_id', '=', personId)
        .where('route', '=', 'DIGITAL')
        .where('state', 'in', HELD_STATES)
        .where('provider_orgnr', '!=', target.providerOrgnr)
        .orderBy('created_at')
        .orderBy('id')
        .forUpdate()
        .execute();
      if (held.length === 0) {
        throw new Problem(storageProblems.NO_PREVIOUS_PROVIDER, 'No provider other than your current one holds letters delivered to you through the hub, so there is nothing to move');
      }
      await trx
        .insertInto('moves')
        .values({ id: moveId, person_id: personId, to_provider_orgnr: target.providerOrgnr, to_mailbox_address: target.address, created_at: now, deadline_at: new Date(now.getTime() + opts.timeoutSeconds * 1000) })
        .execute();
      await trx
        .insertInto('move_items')
        .values(held.map((d) => ({ id: randomUUID(), move_id: moveId, delivery_id: d.id, message_id: d.message_id, from_provider_orgnr: d.provider_orgnr, updated_at: now })))
        .execute();
    });
  } catch (err) {
    if (isUniqueViolation(err, 'moves_one_open_per_person') || isUniqueViolation(err, 'move_items_open_delivery')) {
      throw new Problem(storageProblems.MOVE_IN_PROGRESS, 'A move of your letters is already in progress');
    }
    throw err;
  }
  return (await moveView(ctx.db, moveId))!;
}

export async function citizenMoves(db: Kysely<Database>, personId: string): Promise<MoveView[]> {
  const rows = await db.selectFrom('moves').select('id').where('person_id', '=', personId).orderBy('created_at', 'desc').limit(20).execute();
  return (await Promise.all(rows.map((r) => moveView(db, r.id)))).filter((m): m is MoveView => m !== undefined);
}

export async function citizenMove(db: Kysely<Database>, personId: string, moveId: string): Promise<MoveView> {
  const own = await db.selectFrom('moves').select('id').where('id', '=', moveId).where('person_id', '=', personId).executeTakeFirst();
  if (!own) throw new Problem(storageProblems.MOVE_NOT_FOUND, 'No move with this id is yours');
  return (await moveView(db, moveId))!;
}

/** Operators: moves by state, newest first, counts only (no personIds). */
export async function operatorMoves(db: Kysely<Database>, q: { state?: MoveState; limit: number }) {
  let query = db
    .selectFrom('moves as m')
    .leftJoin('move_items as i', 'i.move_id', 'm.id')
    .select([
      'm.id',
      'm.state',
      'm.failure_reason as failureReason',
      'm.to_provider_orgnr as toProviderOrgnr',
      'm.created_at as createdAt',
      'm.deadline_at as deadlineAt',
      'm.finished_at as finishedAt',
      sql<number>`count(i.id)::int`.as('letters'),
      sql<number>`(count(i.id) filter (where i.state = 'MOVED'))::int`.as('moved'),
      sql<number>`(count(i.id) filter (where i.state = 'MISSING'))::int`.as('missing'),
      sql<number>`(count(i.id) filter (where i.state = 'FAILED'))::int`.as('failed'),
      sql<number>`(count(i.id) filter (where i.state = 'PENDING'))::int`.as('pending'),
      sql<string[]>`coalesce(array_agg(distinct i.from_provider_orgnr) filter (where i.id is not null), '{}')`.as('fromProviderOrgnrs'),
    ])
    .groupBy('m.id')
    .orderBy('m.created_at', 'desc')
    .limit(q.limit);
  if (q.state) query = query.where('m.state', '=', q.state);
  return query.execute();
}

/** The old provider's feed: every letter it is asked to export, oldest move first, with the certificate to seal for. */
export async function exportFeed(ctx: StorageContext, org: string, limit: number) {
  const transport = await hubTransportKey(ctx.db, ctx.keyring);
  const rows = await ctx.db
    .selectFrom('move_items as i')
    .innerJoin('moves as m', 'm.id', 'i.move_id')
    .innerJoin('deliveries as d', 'd.id', 'i.delivery_id')
    .select(['i.id', 'i.move_id as moveId', 'i.delivery_id as deliveryId', 'i.message_id as messageId', 'd.person_id as personId', 'd.mailbox_address as mailboxAddress', 'm.deadline_at as deadlineAt'])
    .where('i.from_provider_orgnr', '=', org)
    .where('i.state', '=', 'PENDING')
    .where('m.state', '=', 'IN_PROGRESS')
    .orderBy('m.created_at')
    .orderBy('i.id')
    .limit(limit)
    .execute();
  return { transport, exports: rows };
}

interface LockedItem {
  item: Awaited<ReturnType<typeof lockItem>>['item'];
  move: Awaited<ReturnType<typeof lockItem>>['move'];
}

/** Move row first, then the item (the order the deadline sweep takes them in too). */
async function lockItem(trx: Transaction<Database>, org: string, itemId: string) {
  const peek = await trx.selectFrom('move_items').select('move_id').where('id', '=', itemId).where('from_provider_orgnr', '=', org).executeTakeFirst();
  if (!peek) throw new Problem(storageProblems.EXPORT_NOT_FOUND, 'No export request with this id is addressed to you');
  const move = await trx.selectFrom('moves').selectAll().where('id', '=', peek.move_id).forUpdate().executeTakeFirstOrThrow();
  const item = await trx.selectFrom('move_items').selectAll().where('id', '=', itemId).forUpdate().executeTakeFirstOrThrow();
  return { move, item };
}

function requireOpen({ move, item }: LockedItem, answer: 'MOVED' | 'MISSING'): boolean {
  if (item.state === answer) return false; // the same answer again: idempotent
  if (item.state !== 'PENDING') throw new Problem(storageProblems.EXPORT_CLOSED, `This letter's export is already ${item.state}`, { state: item.state });
  if (move.state !== 'IN_PROGRESS') throw new Problem(storageProblems.EXPORT_CLOSED, `The move is ${move.state}`, { state: move.state });
  return true;
}

/** Ends a move when none of its letters is pending any more; the citizen sees the outcome. */
async function finishIfDone(trx: Transaction<Database>, moveId: string, now: Date): Promise<void> {
  const { rows } = await sql<{ pending: number; failed: number; moved: number }>`
    select (count(*) filter (where state = 'PENDING'))::int as pending, (count(*) filter (where state = 'FAILED'))::int as failed,
           (count(*) filter (where state = 'MOVED'))::int as moved
      from move_items where move_id = ${moveId}`.execute(trx);
  const c = rows[0]!;
  if (c.pending > 0) return;
  const state: MoveState = c.failed === 0 ? 'COMPLETED' : c.moved > 0 ? 'PARTIAL' : 'FAILED';
  await trx.updateTable('moves').set({ state, finished_at: now, citizen_notified_at: now }).where('id', '=', moveId).execute();
  // The citizen is told by e-mail (notification's NOTICE); the job is a trigger, no personId in it.
  await enqueue(trx, { queue: 'notification', name: MOVE_NOTICE_JOB, data: { moveId } satisfies MoveNoticeJob });
}

export interface ExportResult {
  itemId: string;
  state: MoveItemState;
  newDeliveryId: string | null;
}

/**
 * One exported letter: CMS EnvelopedData for the hub's transport certificate around the ASiC-E
 * package the provider received. Checked before anything is written: the manifest must be the
 * one the hub sealed (its SHA-256 is in the letter's SEALED event) and every document must hash
 * to the manifest's value, so a provider cannot hand over anything but the original letter.
 * The ciphertext is stored as it came (a new package: the provider's data key wrapped under the
 * KEK, its IV), so the new provider's pull wraps it for its own certificate like any delivery.
 */
export async function receiveExport(ctx: StorageContext, org: string, itemId: string, cms: Buffer, opts: { maxBytes: number; now?: Date }): Promise<ExportResult> {
  const now = opts.now ?? new Date();
  const transport = await hubTransportKey(ctx.db, ctx.keyring);
  await ctx.hub.signingKey();
  return ctx.db.transaction().execute(async (trx) => {
    const locked = await lockItem(trx, org, itemId);
    if (!requireOpen(locked, 'MOVED')) return { itemId, state: locked.item.state, newDeliveryId: locked.item.new_delivery_id };
    const { move, item } = locked;
    const sealed = await trx
      .selectFrom('message_events')
      .select('data')
      .where('message_id', '=', item.message_id)
      .where('type', '=', 'SEALED')
      .orderBy('seq')
      .limit(1)
      .executeTakeFirst();
    const expectedManifest = (sealed?.data as { manifestSha256?: string } | undefined)?.manifestSha256;
    let envelope;
    try {
      envelope = openEnvelope(cms, transport);
      const zip = readZip(decryptContent(envelope), { maxEntryBytes: opts.maxBytes });
      const manifestJson = zip.get('manifest.json');
      if (!manifestJson) throw new CmsError('the package has no manifest.json');
      if (createHash('sha256').update(manifestJson).digest('hex') !== expectedManifest) throw new CmsError('the manifest is not the one the hub sealed for this letter');
      const manifest = JSON.parse(manifestJson.toString('utf8')) as { messageId?: string; documents?: { name: string; sha256: string; size: number }[] };
      if (manifest.messageId !== item.message_id) throw new CmsError('the package is another letter');
      for (const d of manifest.documents ?? []) {
        const bytes = zip.get(d.name);
        if (!bytes || bytes.length !== d.size || createHash('sha256').update(bytes).digest('hex') !== d.sha256) throw new CmsError('a document differs from the one the hub sealed');
      }
    } catch (err) {
      if (err instanceof CmsError || err instanceof ZipReadError || err instanceof SyntaxError) {
        throw new Problem(storageProblems.EXPORT_INVALID, err.message.slice(0, 200), { reason: err.message.slice(0, 200) });
      }
      throw err;
    }

    const old = await trx.selectFrom('deliveries').selectAll().where('id', '=', item.delivery_id).forUpdate().executeTakeFirstOrThrow();
    const openedAt = await trx
      .selectFrom('message_events')
      .select(['at', 'data'])
      .where('message_id', '=', item.message_id)
      .where('type', '=', 'OPENED')
      .orderBy('seq')
      .limit(1)
      .executeTakeFirst();
    const originalOpenedAt = old.opened_at ?? old.original_opened_at ?? (openedAt ? new Date(String((openedAt.data as { at?: string }).at ?? openedAt.at.toISOString())) : null);

    // The new package: the exported ciphertext as it is, its data key wrapped under the KEK.
    const packageId = randomUUID();
    const { kekId, wrapped } = ctx.keyring.wrap(envelope.dataKey, dataKeyContext(packageId));
    envelope.dataKey.fill(0);
    await trx.insertInto('packages').values({ id: packageId, kek_id: kekId, wrapped_key: wrapped, iv: envelope.iv }).execute();
    const stored = await new PostgresBlobStore(trx).put(packageId, (async function* () {
      yield envelope.ciphertext;
    })());
    await trx.updateTable('packages').set({ status: 'SEALED', ciphertext_size: stored.size, chunk_count: stored.chunks, sealed_at: now }).where('id', '=', packageId).execute();

    const newDeliveryId = randomUUID();
    await trx
      .insertInto('deliveries')
      .values({
        id: newDeliveryId,
        message_id: old.message_id,
        sender_orgnr: old.sender_orgnr,
        person_id: old.person_id,
        route: 'DIGITAL',
        provider_orgnr: move.to_provider_orgnr,
        mailbox_address: move.to_mailbox_address,
        title: old.title,
        security_level: old.security_level,
        available_at: old.available_at,
        package_id: packageId,
        package_size: stored.size,
        kind: 'MOVED',
        original_delivery_id: old.original_delivery_id ?? old.id,
        original_delivered_at: old.original_delivered_at ?? old.acked_at,
        original_opened_at: originalOpenedAt,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await trx.updateTable('deliveries').set({ state: 'MOVED', moved_at: now, leased_until: null, updated_at: now }).where('id', '=', old.id).execute();
    await trx.updateTable('move_items').set({ state: 'MOVED', new_delivery_id: newDeliveryId, updated_at: now }).where('id', '=', item.id).execute();
    await appendEvent(trx, ctx.hub, {
      messageId: old.message_id,
      senderOrgnr: old.sender_orgnr,
      type: LIFECYCLE_EVENTS.MOVED_OUT,
      at: now,
      data: { moveId: move.id, deliveryId: old.id, fromProviderOrgnr: old.provider_orgnr, toProviderOrgnr: move.to_provider_orgnr, newDeliveryId, packageId },
    });
    await finishIfDone(trx, move.id, now);
    return { itemId, state: 'MOVED', newDeliveryId };
  });
}

/** The old provider no longer has the letter (the citizen deleted it): reported, never invented. */
export async function reportMissing(ctx: StorageContext, org: string, itemId: string, reason: string, now = new Date()): Promise<ExportResult> {
  return ctx.db.transaction().execute(async (trx) => {
    const locked = await lockItem(trx, org, itemId);
    if (!requireOpen(locked, 'MISSING')) return { itemId, state: locked.item.state, newDeliveryId: null };
    await trx.updateTable('move_items').set({ state: 'MISSING', reason, updated_at: now }).where('id', '=', itemId).execute();
    await finishIfDone(trx, locked.move.id, now);
    return { itemId, state: 'MISSING', newDeliveryId: null };
  });
}

/**
 * Moves whose deadline passed with letters still pending: those letters FAILED (the old provider
 * never answered), the move FAILED (nothing moved) or PARTIAL, visible to the citizen with a
 * notice. SKIP LOCKED: several storage processes may sweep together.
 */
export async function failOverdueMoves(ctx: StorageContext, now = new Date()): Promise<number> {
  return ctx.db.transaction().execute(async (trx) => {
    const overdue = await trx.selectFrom('moves').select('id').where('state', '=', 'IN_PROGRESS').where('deadline_at', '<=', now).orderBy('deadline_at').limit(100).forUpdate().skipLocked().execute();
    for (const m of overdue) {
      await trx.updateTable('move_items').set({ state: 'FAILED', reason: 'NO_ANSWER_FROM_PROVIDER', updated_at: now }).where('move_id', '=', m.id).where('state', '=', 'PENDING').execute();
      await finishIfDone(trx, m.id, now);
      await trx.updateTable('moves').set({ failure_reason: 'NO_ANSWER_FROM_PROVIDER' }).where('id', '=', m.id).where('state', '!=', 'COMPLETED').execute();
    }
    return overdue.length;
  });
}

/** The new provider acknowledged a MOVED delivery: MOVED_IN on the chain, no receipt, no alert. */
export async function movedIn(trx: Transaction<Database>, ctx: StorageContext, d: { id: string; messageId: string; senderOrgnr: string; providerOrgnr: string }, at: Date): Promise<void> {
  const item = await trx.selectFrom('move_items').select(['move_id', 'delivery_id']).where('new_delivery_id', '=', d.id).executeTakeFirst();
  await appendEvents(trx, ctx.hub, [
    {
      messageId: d.messageId,
      senderOrgnr: d.senderOrgnr,
      type: LIFECYCLE_EVENTS.MOVED_IN,
      at,
      data: { deliveryId: d.id, providerOrgnr: d.providerOrgnr, ...(item ? { moveId: item.move_id, originalDeliveryId: item.delivery_id } : {}) },
    },
  ]);
}
