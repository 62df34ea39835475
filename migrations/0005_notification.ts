import { sql, type Kysely } from 'kysely';

/**
 * Notification (owned by the notification service): one row per alert or invitation e-mail the
 * hub may send. The unique key (message_id, channel, repetition) is what makes an alert go out at
 * most once: a worker claims the row in Postgres (a lease with a token) before it talks to SMTP or
 * the SMS gateway and marks it SENT after, whatever BullMQ or Redis did in between.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table notification_attempts (
      id uuid primary key,
      kind text not null check (kind in ('ALERT', 'INVITATION')),
      message_id uuid,
      channel text not null check (channel in ('email', 'sms')),
      repetition smallint not null default 0,
      after_days smallint not null default 0,
      sender_orgnr text not null,
      person_id text not null,
      state text not null default 'SCHEDULED'
        check (state in ('SCHEDULED', 'SENDING', 'SENT', 'SKIPPED', 'FAILED', 'CANCELLED')),
      due_at timestamptz not null,
      job_id text,
      tries integer not null default 0,
      claim_token uuid,
      ambiguous boolean not null default false,
      transport_ref text,
      reason text,
      created_at timestamptz not null default now(),
      claimed_at timestamptz,
      sent_at timestamptz,
      finished_at timestamptz,
      check ((kind = 'ALERT') = (message_id is not null))
    )`.execute(db);
  // At most one alert per (message, channel, repetition); invitations have no message.
  await sql`create unique index notification_attempts_alert on notification_attempts (message_id, channel, repetition) where message_id is not null`.execute(db);
  await sql`create index notification_attempts_open on notification_attempts (message_id) where state in ('SCHEDULED', 'SENDING')`.execute(db);
  await sql`create index notification_attempts_invited on notification_attempts (person_id, created_at) where kind = 'INVITATION'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists notification_attempts`.execute(db);
}
