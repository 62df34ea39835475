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
