import { sql, type Kysely } from 'kysely';

/**
 * The outbox trigger wakes the relay (NOTIFY) only for jobs due within 10 seconds. A NOTIFY makes
 * the committing transaction take a database-wide lock until its commit (WAL flush included) is
 * done, so every letter's commit queued behind the one before (no group commit). The intake's
 * job is the expiry check, days away: the relay's poll (OUTBOX_POLL_MS) picks such rows up, a
 * poll interval at most later than a wake-up would have.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function outbox_notify() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from outbox_inserted where delay_ms < 10000) then
        perform pg_notify('postbud_outbox', '');
      end if;
      return null;
    end $$`.execute(db);
  await sql`drop trigger if exists outbox_notify on outbox`.execute(db);
  await sql`create trigger outbox_notify after insert on outbox referencing new table as outbox_inserted for each statement execute function outbox_notify()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists outbox_notify on outbox`.execute(db);
  await sql`
    create or replace function outbox_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('postbud_outbox', '');
      return null;
    end $$`.execute(db);
  await sql`create trigger outbox_notify after insert on outbox for each statement execute function outbox_notify()`.execute(db);
}
