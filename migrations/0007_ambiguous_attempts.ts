import { sql, type Kysely } from 'kysely';

/**
 * Attempts taken over after their worker died between claim and commit (`ambiguous`): the only
 * alerts that may have gone out twice, under the same key. Operators watch their number in
 * /metrics; this partial index holds just those rare rows, so counting them at each scrape stays
 * cheap however large the table grows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index notification_attempts_ambiguous on notification_attempts (channel) where ambiguous`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists notification_attempts_ambiguous`.execute(db);
}
