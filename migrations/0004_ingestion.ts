import { sql, type Kysely } from 'kysely';

/**
 * Ingestion: accepted letters (`messages`, no document bytes: those are sealed in `packages`),
 * idempotency keys, per-sender webhooks and the push state of each receipt, and
 * `message_status(id)`, which folds a message's evidence log into its current status.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table messages (
      id uuid primary key,
      sender_orgnr text not null,
      sender_reference text,
      person_id text not null,
      title text not null,
      language text not null check (language in ('nb', 'nn', 'en', 'se')),
      security_level integer not null check (security_level in (3, 4)),
      available_at timestamptz not null,
      open_receipt boolean not null default false,
      notifications jsonb,
      print jsonb,
      route text not null check (route in ('DIGITAL', 'PRINT')),
      provider_orgnr text not null,
      package_id uuid not null,
      manifest_sha256 text not null,
      documents jsonb not null,
      created_at timestamptz not null default now(),
      unique (sender_orgnr, sender_reference)
    )`.execute(db);
  await sql`create index messages_sender_created on messages (sender_orgnr, created_at, id)`.execute(db);

  // Kept at least IDEMPOTENCY_TTL_HOURS; an expired row may be taken over by a new request.
  await sql`
    create table idempotency_keys (
      sender_orgnr text not null,
      key text not null,
      request_hash text not null,
      message_id uuid not null,
      response jsonb not null,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null,
      primary key (sender_orgnr, key)
    )`.execute(db);
  await sql`create index idempotency_keys_expiry on idempotency_keys (expires_at)`.execute(db);

  await sql`
    create table webhooks (
      sender_orgnr text primary key,
      url text not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table webhook_pushes (
      receipt_id uuid primary key,
      sender_orgnr text not null,
      attempts integer not null default 0,
      next_attempt_at timestamptz not null default now(),
      delivered_at timestamptz,
      gave_up_at timestamptz,
      last_error text,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index webhook_pushes_due on webhook_pushes (next_attempt_at) where delivered_at is null and gave_up_at is null`.execute(db);

  // The status a sender sees, from the evidence log (written by storage, notification and
  // ingestion): the latest status-bearing event, except that NOTIFIED never hides OPENED.
  await sql`
    create function message_status(mid uuid, out status text, out status_at timestamptz)
    language sql stable as $$
      select case e.type
               when 'SEALED' then 'ACCEPTED'
               when 'DELIVERED' then 'DELIVERED'
               when 'NOTIFIED' then 'NOTIFIED'
               when 'OPENED' then 'OPENED'
               when 'PRINT_ACCEPTED' then 'PRINT_ACCEPTED'
               when 'PRINTED' then 'PRINT_ACCEPTED'
               when 'ERROR' then case when e.data->>'reason' = 'EXPIRED' then 'EXPIRED' else 'FAILED' end
               else 'FAILED'
             end,
             e.at
        from message_events e
       where e.message_id = mid
         and e.type in ('SEALED', 'DELIVERED', 'NOTIFIED', 'OPENED', 'PRINT_ACCEPTED', 'PRINTED', 'FAILED', 'RETURNED', 'ERROR')
         and not (e.type = 'NOTIFIED' and exists (select 1 from message_events o where o.message_id = mid and o.type = 'OPENED'))
       order by e.seq desc
       limit 1
    $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop function if exists message_status(uuid)`.execute(db);
  for (const t of ['webhook_pushes', 'webhooks', 'idempotency_keys', 'messages']) {
    await sql`drop table if exists ${sql.table(t)}`.execute(db);
  }
}
