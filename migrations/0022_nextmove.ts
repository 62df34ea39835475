import { sql, type Kysely } from 'kysely';

/**
 * Ingestion: the eFormidling next-move API (/api/, docs/eformidling.md).
 *
 * - `nextmove_messages`: a message created through /api/messages/out, from creation (OPPRETTET)
 *   until it is sent and then as its conversation. The SBD is kept as sent to us; documents are
 *   held in `nextmove_documents` between the upload requests, each encrypted (AES-256-GCM) under
 *   the message's own data key, which is stored wrapped under the KEK.
 * - `nextmove_statuses`: the message's statuses in next-move's vocabulary with their numeric ids,
 *   OPPRETTET at creation, the rest folded in from the evidence log; at most one per status.
 * - `nextmove_subscriptions` and `nextmove_pushes`: webhook subscriptions and the push state of
 *   each status event to each subscription.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table nextmove_messages (
      message_id uuid primary key,
      conv_id bigserial unique,
      sender_orgnr text not null,
      conversation_id text not null,
      receiver text not null,
      process text not null,
      type text not null check (type in ('digital', 'print')),
      sbd jsonb not null,
      sbd_sha256 text not null,
      state text not null default 'OPPRETTET' check (state in ('OPPRETTET', 'SENDING', 'SENDT')),
      kek_id text not null,
      wrapped_key bytea not null,
      events_seen integer not null default 0,
      finished boolean not null default false,
      created_at timestamptz not null default now(),
      sent_at timestamptz
    )`.execute(db);
  await sql`create index nextmove_messages_sender on nextmove_messages (sender_orgnr, conv_id)`.execute(db);
  await sql`create index nextmove_messages_open on nextmove_messages (message_id) where state = 'SENDT' and not finished`.execute(db);

  await sql`
    create table nextmove_documents (
      message_id uuid not null references nextmove_messages (message_id) on delete cascade,
      seq integer not null,
      filename text not null,
      title text,
      mime text not null,
      size integer not null,
      sha256 text not null,
      iv bytea not null,
      tag bytea not null,
      ciphertext bytea not null,
      created_at timestamptz not null default now(),
      primary key (message_id, seq),
      unique (message_id, filename)
    )`.execute(db);

  await sql`
    create table nextmove_statuses (
      id bigserial primary key,
      message_id uuid not null,
      sender_orgnr text not null,
      status text not null,
      at timestamptz not null,
      event_seq integer,
      unique (message_id, status)
    )`.execute(db);
  await sql`create index nextmove_statuses_sender on nextmove_statuses (sender_orgnr, id)`.execute(db);

  await sql`
    create table nextmove_subscriptions (
      id bigserial primary key,
      sender_orgnr text not null,
      name text not null,
      push_endpoint text not null,
      resource text not null,
      event text not null,
      filter text,
      filter_status text[],
      filter_service text[],
      filter_direction text[],
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index nextmove_subscriptions_sender on nextmove_subscriptions (sender_orgnr, id)`.execute(db);

  await sql`
    create table nextmove_pushes (
      subscription_id bigint not null references nextmove_subscriptions (id) on delete cascade,
      status_id bigint not null references nextmove_statuses (id) on delete cascade,
      attempts integer not null default 0,
      next_attempt_at timestamptz not null default now(),
      delivered_at timestamptz,
      gave_up_at timestamptz,
      last_error text,
      created_at timestamptz not null default now(),
      primary key (subscription_id, status_id)
    )`.execute(db);
  await sql`create index nextmove_pushes_due on nextmove_pushes (next_attempt_at) where delivered_at is null and gave_up_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['nextmove_pushes', 'nextmove_subscriptions', 'nextmove_statuses', 'nextmove_documents', 'nextmove_messages']) {
    await sql`drop table if exists ${sql.table(t)}`.execute(db);
  }
}
