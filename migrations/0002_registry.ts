import { sql, type Kysely } from 'kysely';

/**
 * The contact and reservation registry (owned by the registry service): persons with their
 * contact points, reservation and language; providers, their mailboxes and senders; history of
 * reservation and mailbox changes; the change feed; the lookup audit.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // personIds are digits: the "C" collation compares them bytewise, which makes the index probes
  // of a 1000-person lookup several times cheaper than a locale-aware collation would.
  await sql`
    create table persons (
      person_id text collate "C" primary key,
      status text not null default 'ACTIVE' check (status in ('ACTIVE', 'DELETED')),
      reserved boolean not null default false,
      reserved_at timestamptz,
      reservation_updated_at timestamptz,
      language text check (language in ('nb', 'nn', 'en', 'se')),
      language_updated_at timestamptz,
      email text,
      email_updated_at timestamptz,
      email_verified_at timestamptz,
      mobile text,
      mobile_updated_at timestamptz,
      mobile_verified_at timestamptz,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check ((email is null) = (email_updated_at is null)),
      check ((mobile is null) = (mobile_updated_at is null)),
      check (reserved = (reserved_at is not null))
    )`.execute(db);

  await sql`
    create table providers (
      orgnr text primary key check (orgnr ~ '^[0-9]{9}$'),
      name text not null,
      kind text not null check (kind in ('digital', 'print')),
      certificate bytea,
      status text not null default 'active' check (status in ('active', 'suspended')),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (kind <> 'digital' or certificate is not null)
    )`.execute(db);

  await sql`
    create table mailboxes (
      id bigserial primary key,
      person_id text collate "C" not null,
      provider_orgnr text not null references providers,
      address text not null,
      certificate bytea,
      active boolean not null default false,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      closed_at timestamptz,
      unique (provider_orgnr, address),
      check (not (active and closed_at is not null))
    )`.execute(db);
  await sql`create unique index mailboxes_one_active on mailboxes (person_id) where active`.execute(db);
  await sql`create index mailboxes_person on mailboxes (person_id)`.execute(db);

  await sql`
    create table senders (
      orgnr text primary key check (orgnr ~ '^[0-9]{9}$'),
      name text not null,
      status text not null default 'active' check (status in ('active', 'suspended')),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table reservation_history (
      id bigserial primary key,
      person_id text not null,
      reserved boolean not null,
      actor text not null,
      changed_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index reservation_history_person on reservation_history (person_id, id)`.execute(db);

  await sql`
    create table mailbox_history (
      id bigserial primary key,
      person_id text not null,
      mailbox_id bigint not null,
      provider_orgnr text not null,
      address text not null,
      event text not null check (event in ('registered', 'updated', 'activated', 'deactivated', 'closed', 'reopened')),
      actor text not null,
      changed_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index mailbox_history_person on mailbox_history (person_id, id)`.execute(db);

  // The change feed. Sequence numbers come from one counter row that a writer updates as the
  // last statement of its transaction: the row lock orders writers, so numbers are handed out in
  // commit order and a rolled-back transaction gives its numbers back. Readers never see a gap.
  await sql`
    create table registry_change_counter (
      id integer primary key check (id = 1),
      last_seq bigint not null
    )`.execute(db);
  await sql`insert into registry_change_counter (id, last_seq) values (1, 0)`.execute(db);
  await sql`
    create table registry_changes (
      seq bigint primary key,
      person_id text not null,
      kind text not null,
      changed_at timestamptz not null default now()
    )`.execute(db);

  await sql`
    create table lookup_audit (
      id bigserial primary key,
      consumer_org text not null,
      client_id text,
      api text not null,
      person_count integer not null,
      purpose text,
      scopes text not null,
      looked_up_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index lookup_audit_time on lookup_audit (looked_up_at)`.execute(db);
  await sql`create index lookup_audit_org on lookup_audit (consumer_org, looked_up_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    'lookup_audit',
    'registry_changes',
    'registry_change_counter',
    'mailbox_history',
    'reservation_history',
    'senders',
    'mailboxes',
    'providers',
    'persons',
  ]) {
    await sql`drop table if exists ${sql.table(table)}`.execute(db);
  }
}
