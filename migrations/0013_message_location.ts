import { sql, type Kysely } from 'kysely';

/**
 * `message_location(id)`: where a letter is now, from its newest delivery (storage's table).
 * `messages.route/provider_orgnr` hold the intake's routing decision; storage moves a pending
 * delivery when the citizen changes mailbox (re-addressing) and the expiry adds a print delivery,
 * so anything that tells a sender where its letter is reads this instead. No delivery (cannot
 * happen for an accepted letter) gives nulls, and callers fall back to the message row.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function message_location(mid uuid, out route text, out provider_orgnr text, out delivery_id uuid)
    language sql stable as $$
      select d.route, d.provider_orgnr, d.id
        from deliveries d
       where d.message_id = mid
       order by d.created_at desc, d.id desc
       limit 1
    $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function if exists message_location(uuid)`.execute(db);
}
