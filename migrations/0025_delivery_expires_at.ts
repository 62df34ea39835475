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
 * - Backfill: every delivery still waiting gets `created_at` + the installation's expiry,
 *   DELIVERY_EXPIRY_SECONDS as the migrating process has it (the services migrate at start
 *   with the environment they run with; unset or empty is the setting's default, 7 days). A
 *   fixed 7 days would have expired, or sent to print, letters weeks early where the setting
 *   is longer. Their queued `expire-delivery` jobs, which the ingestion worker still runs, were
 *   delayed by the setting at intake: whichever comes first expires the delivery, the other
 *   finds it no longer READY and does nothing. The setting is read here, not imported, so this
 *   file stays as it is whatever the settings module becomes.
 */
const DEFAULT_EXPIRY_SECONDS = 604_800;
const MAX_EXPIRY_SECONDS = 365 * 86_400;

export function backfillExpirySeconds(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DELIVERY_EXPIRY_SECONDS?.trim();
  if (raw === undefined || raw === '') return DEFAULT_EXPIRY_SECONDS;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > MAX_EXPIRY_SECONDS) {
    throw new Error(`DELIVERY_EXPIRY_SECONDS must be a whole number of seconds from 1 to ${MAX_EXPIRY_SECONDS} to backfill deliveries' expiry; got ${JSON.stringify(raw.slice(0, 40))}`);
  }
  return n;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const seconds = backfillExpirySeconds();
  await sql`alter table deliveries add column expires_at timestamptz`.execute(db);
  await sql`
    update deliveries
       set expires_at = created_at + make_interval(secs => ${seconds})
     where state = 'READY' and kind = 'ORIGINAL'`.execute(db);
  await sql`create index deliveries_expiry_due on deliveries (expires_at) where state = 'READY' and expires_at is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists deliveries_expiry_due`.execute(db);
  await sql`alter table deliveries drop column if exists expires_at`.execute(db);
}
