import { sql } from 'kysely';
import { appendEvent } from '../../shared/evidence/events.js';
import type { StorageContext } from '../../shared/storage/context.js';

/**
 * The mailbox is the archive; the hub keeps evidence, not letters. Once a delivery has been
 * acknowledged for `graceHours`, its package's ciphertext and wrapped data key are deleted
 * (PURGED in the evidence log); the delivery row, fingerprint and events stay. Uploads that never
 * finished sealing (an hour) or never became a delivery (a day) are removed too.
 */
export async function purgeExpired(ctx: StorageContext, opts: { graceHours: number; batch?: number }): Promise<{ purged: number; abandoned: number }> {
  const batch = opts.batch ?? 200;
  let purged = 0;
  for (;;) {
    const n = await ctx.db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('deliveries as d')
        .innerJoin('packages as p', 'p.id', 'd.package_id')
        .select(['d.id', 'd.message_id', 'd.sender_orgnr', 'd.package_id'])
        .where('p.status', '=', 'SEALED')
        .where('d.acked_at', '<=', sql<Date>`now() - make_interval(hours => ${opts.graceHours})`)
        .limit(batch)
        .forUpdate('p')
        .skipLocked()
        .execute();
      if (rows.length === 0) return 0;
      const ids = rows.map((r) => r.package_id);
      await trx.deleteFrom('package_chunks').where('package_id', 'in', ids).execute();
      await trx.updateTable('packages').set({ status: 'PURGED', wrapped_key: null, purged_at: new Date() }).where('id', 'in', ids).execute();
      await trx.updateTable('deliveries').set({ envelope_header: null }).where('id', 'in', rows.map((r) => r.id)).execute();
      for (const r of rows) {
        await appendEvent(trx, ctx.hub, { messageId: r.message_id, senderOrgnr: r.sender_orgnr, type: 'PURGED', data: { deliveryId: r.id, packageId: r.package_id } });
      }
      return rows.length;
    });
    purged += n;
    if (n < batch) break;
  }
  const abandoned = await ctx.db
    .deleteFrom('packages')
    .where((eb) =>
      eb.or([
        eb.and([eb('status', '=', 'SEALING'), eb('created_at', '<', sql<Date>`now() - interval '1 hour'`)]),
        eb.and([
          eb('status', '=', 'SEALED'),
          eb('created_at', '<', sql<Date>`now() - interval '1 day'`),
          eb.not(eb.exists(eb.selectFrom('deliveries').select('id').whereRef('deliveries.package_id', '=', 'packages.id'))),
        ]),
      ]),
    )
    .executeTakeFirst();
  return { purged, abandoned: Number(abandoned.numDeletedRows) };
}

export const TOMBSTONE_TYP = 'postbud-tombstone+jws';

/**
 * Evidence retention (EVIDENCE_RETENTION_DAYS; off by default): a message whose last event is
 * older than `days`, and whose events are all in the Merkle log, loses its events and receipts.
 * In their place stays a tombstone signed by the hub listing every removed event (seq, type, at,
 * hash, leaf index) and receipt id, and the events' leaf hashes, so the log's tree and every
 * published head stay valid. This is the only process the append-only triggers let delete
 * evidence: it sets `postbud.evidence_retention` in its transaction and writes the tombstone
 * first (migration 0018).
 */
export async function purgeEvidence(ctx: StorageContext, opts: { days: number; batch?: number }): Promise<{ tombstones: number }> {
  const batch = opts.batch ?? 100;
  let tombstones = 0;
  for (;;) {
    const n = await ctx.db.transaction().execute(async (trx) => {
      const { rows: due } = await sql<{ message_id: string }>`
        select e.message_id from message_events e
        where not exists (select 1 from evidence_tombstones t where t.message_id = e.message_id)
        group by e.message_id
        having max(e.at) < now() - make_interval(days => ${opts.days}) and bool_and(e.leaf_index is not null)
        limit ${batch}`.execute(trx);
      if (due.length === 0) return 0;
      // Several storage processes: each message is taken by one of them.
      const ids = due.map((d) => d.message_id);
      const { rows: locked } = await sql<{ id: string }>`
        select id from unnest(${sql.val(ids)}::uuid[]) as x(id) where pg_try_advisory_xact_lock(hashtextextended('postbud.events:' || id, 0))`.execute(trx);
      await sql`set local postbud.evidence_retention = 'on'`.execute(trx);
      const purgedAt = new Date();
      for (const { id } of locked) {
        const events = await trx.selectFrom('message_events').select(['seq', 'type', 'at', 'hash', 'leaf_index']).where('message_id', '=', id).orderBy('seq').execute();
        const receipts = await trx.selectFrom('receipts').select(['id', 'sender_orgnr']).where('message_id', '=', id).orderBy('id').execute();
        const sender = receipts[0]?.sender_orgnr ?? (await trx.selectFrom('deliveries').select('sender_orgnr').where('message_id', '=', id).executeTakeFirst())?.sender_orgnr ?? '';
        const payload = {
          messageId: id,
          sender,
          reason: 'RETENTION',
          purgedAt: purgedAt.toISOString(),
          events: events.map((e) => ({ seq: e.seq, type: e.type, at: e.at.toISOString(), hash: e.hash, leafIndex: Number(e.leaf_index) })),
          receipts: receipts.map((r) => r.id),
        };
        const jws = await ctx.hub.sign(Buffer.from(JSON.stringify(payload)), { typ: TOMBSTONE_TYP });
        await trx.insertInto('evidence_tombstones').values({ message_id: id, sender_orgnr: sender, purged_at: purgedAt, jws }).execute();
        if (events.length > 0) {
          await trx
            .insertInto('evidence_retired_leaves')
            .values(events.map((e) => ({ leaf_index: Number(e.leaf_index), message_id: id, seq: e.seq, hash: e.hash })))
            .execute();
        }
        await trx.deleteFrom('receipts').where('message_id', '=', id).execute();
        await trx.deleteFrom('message_events').where('message_id', '=', id).execute();
      }
      return locked.length;
    });
    tombstones += n;
    if (n < batch) break;
  }
  return { tombstones };
}
