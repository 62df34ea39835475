import { sql, type Kysely } from 'kysely';

/**
 * The citizen is told how their move of delivered mail ended (issue 14): a third kind of
 * notification attempt, NOTICE, an e-mail to the citizen with no letter behind it. `notice` holds
 * what the text is made from (the move's outcome); `notice_key` makes it go out once per move.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table notification_attempts drop constraint notification_attempts_kind_check`.execute(db);
  await sql`alter table notification_attempts add constraint notification_attempts_kind_check check (kind in ('ALERT', 'INVITATION', 'NOTICE'))`.execute(db);
  await sql`alter table notification_attempts add column notice jsonb`.execute(db);
  await sql`alter table notification_attempts add column notice_key text`.execute(db);
  await sql`create unique index notification_attempts_notice on notification_attempts (notice_key) where notice_key is not null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists notification_attempts_notice`.execute(db);
  await sql`alter table notification_attempts drop column if exists notice_key`.execute(db);
  await sql`alter table notification_attempts drop column if exists notice`.execute(db);
  await sql`delete from notification_attempts where kind = 'NOTICE'`.execute(db);
  await sql`alter table notification_attempts drop constraint notification_attempts_kind_check`.execute(db);
  await sql`alter table notification_attempts add constraint notification_attempts_kind_check check (kind in ('ALERT', 'INVITATION'))`.execute(db);
}
