import { sql, type Kysely } from 'kysely';

/**
 * Storage: sealed packages (ciphertext in chunks, data key wrapped under a KEK), deliveries that
 * providers pull, the hub's signing keys, and the evidence log with its signed receipts.
 * No foreign key to the registry's providers table: a delivery keeps its provider's orgnr as
 * evidence even if the registry later removes the provider.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table packages (
      id uuid primary key,
      status text not null default 'SEALING' check (status in ('SEALING', 'SEALED', 'PURGED')),
      kek_id text not null,
      wrapped_key bytea,
      iv bytea not null check (length(iv) = 16),
      zip_size bigint,
      ciphertext_size bigint,
      chunk_count integer,
      created_at timestamptz not null default now(),
      sealed_at timestamptz,
      purged_at timestamptz
    )`.execute(db);
  await sql`create index packages_sealing on packages (created_at) where status = 'SEALING'`.execute(db);

  await sql`
    create table package_chunks (
      package_id uuid not null references packages (id) on delete cascade,
      seq integer not null,
      data bytea not null,
      primary key (package_id, seq)
    )`.execute(db);
  // Ciphertext does not compress; skip TOAST's compression attempt.
  await sql`alter table package_chunks alter column data set storage external`.execute(db);

  await sql`
    create table deliveries (
      id uuid primary key,
      message_id uuid not null,
      sender_orgnr text not null,
      person_id text not null,
      route text not null check (route in ('DIGITAL', 'PRINT')),
      provider_orgnr text not null,
      mailbox_address text,
      title text not null,
      security_level smallint not null check (security_level in (3, 4)),
      available_at timestamptz not null,
      print_instructions jsonb,
      package_id uuid not null references packages (id),
      state text not null default 'READY',
      leased_until timestamptz,
      lease_count integer not null default 0,
      envelope_header bytea,
      envelope_cert_sha256 bytea,
      fingerprint bytea,
      package_size bigint,
      created_at timestamptz not null default now(),
      acked_at timestamptz,
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index deliveries_ready on deliveries (provider_orgnr, created_at, id) where state = 'READY'`.execute(db);
  await sql`create index deliveries_person_ready on deliveries (person_id) where state = 'READY'`.execute(db);
  await sql`create index deliveries_message on deliveries (message_id)`.execute(db);
  await sql`create index deliveries_acked on deliveries (acked_at) where acked_at is not null`.execute(db);

  await sql`
    create table hub_keys (
      kid text primary key,
      alg text not null,
      public_jwk jsonb not null,
      private_key bytea not null,
      kek_id text not null,
      created_at timestamptz not null default now(),
      retired_at timestamptz
    )`.execute(db);

  await sql`
    create table message_events (
      message_id uuid not null,
      seq integer not null,
      type text not null,
      at timestamptz not null,
      data jsonb not null,
      prev_hash text,
      hash text not null,
      primary key (message_id, seq)
    )`.execute(db);

  await sql`
    create table receipts (
      id uuid primary key,
      message_id uuid not null,
      sender_orgnr text not null,
      type text not null,
      event_seq integer not null,
      jws text not null,
      created_at timestamptz not null default now(),
      acked_at timestamptz
    )`.execute(db);
  await sql`create index receipts_unacked on receipts (sender_orgnr, created_at) where acked_at is null`.execute(db);
  await sql`create index receipts_message on receipts (message_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['receipts', 'message_events', 'hub_keys', 'deliveries', 'package_chunks', 'packages']) {
    await sql`drop table if exists ${sql.table(t)}`.execute(db);
  }
}
