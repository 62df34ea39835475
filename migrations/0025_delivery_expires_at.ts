import { sql, type Kysely } from 'kysely';

/**
 * Delivery expiry by an indexed sweep instead of one delayed queue job per letter: the intake
 * writes `expires_at` with the delivery (no outbox row on its hot path) and the ingestion
 * service's sweep takes the due ones (`expires_at <= now()`, still `READY`, i.e. not yet
 * acknowledged, cancelled, withdrawn or moved) with `FOR UPDATE SKIP LOCKED`.
 *
 * - `expires_at`: null for deliveries that never expire (MOVED deliveries: the letter was
 *   delivered in law at its first acknowledgement; they never had an expiry job either).
 * - `deliveries_expiry_due`: only the deliveries still waiting for their provider's
 *   acknowledgement, so the index stays as small as the pending work and the sweep's query
 *   (`state = 'READY' and expires_at <= $now order by expires_at`) reads it alone.
 * - Backfill: every delivery still waiting gets `created_at` + the default expiry
 *   (DELIVERY_EXPIRY_SECONDS' default, 604800 s = 7 days; a migration does not read the
 *   settings). An installation with another setting has its queued `expire-delivery` jobs
 *   too, which the ingestion worker still runs: whichever comes first expires the delivery,
 *   the other finds it no longer READY and does nothing.
 */
const DEFAULT_EXPIRY_SECONDS = 604_800;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table deliveries add column expires_at timestamptz`.execute(db);
  await sql`
    update deliveries
       set expires_at = created_at + make_interval(secs => ${DEFAULT_EXPIRY_SECONDS})
     where state = 'READY' and kind = 'ORIGINAL'`.execute(db);
  await sql`create index deliveries_expiry_due on deliveries (expires_at) where state = 'READY' and expires_at is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists deliveries_expiry_due`.execute(db);
  await sql`alter table deliveries drop column if exists expires_at`.execute(db);
}
