import { sql, type Kysely } from 'kysely';

/**
 * A letter's whole life (issue 14): cancelling before delivery, and moving delivered mail to a
 * citizen's new provider (flyttet digitalpost).
 *
 * - `deliveries.kind`: ORIGINAL (what the intake made) or MOVED (a delivered letter offered again
 *   to the citizen's new provider), with the original delivery's times. New states CANCELLED
 *   (withdrawn by the sender before any acknowledgement) and MOVED (exported by the old provider).
 * - `moves` / `move_items`: one move per request, one item per letter the old provider held.
 *   At most one unfinished move per person (partial unique index: "move twice at once" loses).
 * - `hub_transport_keys`: the hub's own RSA transport certificate, which old providers seal
 *   exported letters for (private key wrapped under the KEK, like hub_keys).
 * - `message_status()` learns CANCELLED.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table deliveries add column kind text not null default 'ORIGINAL' check (kind in ('ORIGINAL', 'MOVED'))`.execute(db);
  await sql`alter table deliveries add column original_delivery_id uuid`.execute(db);
  await sql`alter table deliveries add column original_delivered_at timestamptz`.execute(db);
  await sql`alter table deliveries add column original_opened_at timestamptz`.execute(db);
  await sql`alter table deliveries add column opened_at timestamptz`.execute(db);
  await sql`alter table deliveries add column cancelled_at timestamptz`.execute(db);
  await sql`alter table deliveries add column moved_at timestamptz`.execute(db);
  await sql`create index deliveries_person on deliveries (person_id)`.execute(db);

  await sql`
    create table moves (
      id uuid primary key,
      person_id text not null,
      to_provider_orgnr text not null,
      to_mailbox_address text not null,
      state text not null default 'IN_PROGRESS' check (state in ('IN_PROGRESS', 'COMPLETED', 'PARTIAL', 'FAILED')),
      failure_reason text,
      created_at timestamptz not null default now(),
      deadline_at timestamptz not null,
      finished_at timestamptz,
      citizen_notified_at timestamptz
    )`.execute(db);
  await sql`create unique index moves_one_open_per_person on moves (person_id) where state = 'IN_PROGRESS'`.execute(db);
  await sql`create index moves_person on moves (person_id, created_at)`.execute(db);
  await sql`create index moves_open_deadline on moves (deadline_at) where state = 'IN_PROGRESS'`.execute(db);

  await sql`
    create table move_items (
      id uuid primary key,
      move_id uuid not null references moves (id) on delete cascade,
      delivery_id uuid not null,
      message_id uuid not null,
      from_provider_orgnr text not null,
      state text not null default 'PENDING' check (state in ('PENDING', 'MOVED', 'MISSING', 'FAILED')),
      reason text,
      new_delivery_id uuid,
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index move_items_move on move_items (move_id)`.execute(db);
  await sql`create index move_items_pending on move_items (from_provider_orgnr, move_id) where state = 'PENDING'`.execute(db);
  await sql`create unique index move_items_open_delivery on move_items (delivery_id) where state = 'PENDING'`.execute(db);

  await sql`
    create table hub_transport_keys (
      id text primary key,
      certificate bytea not null,
      private_key bytea not null,
      kek_id text not null,
      created_at timestamptz not null default now(),
      retired_at timestamptz
    )`.execute(db);

  await sql`
    create or replace function message_status(mid uuid, out status text, out status_at timestamptz)
    language sql stable as $$
      select case e.type
               when 'SEALED' then 'ACCEPTED'
               when 'DELIVERED' then 'DELIVERED'
               when 'NOTIFIED' then 'NOTIFIED'
               when 'OPENED' then 'OPENED'
               when 'PRINT_ACCEPTED' then 'PRINT_ACCEPTED'
               when 'PRINTED' then 'PRINT_ACCEPTED'
               when 'CANCELLED' then 'CANCELLED'
               when 'ERROR' then case when e.data->>'reason' = 'EXPIRED' then 'EXPIRED' else 'FAILED' end
               else 'FAILED'
             end,
             e.at
        from message_events e
       where e.message_id = mid
         and e.type in ('SEALED', 'DELIVERED', 'NOTIFIED', 'OPENED', 'PRINT_ACCEPTED', 'PRINTED', 'FAILED', 'RETURNED', 'ERROR', 'CANCELLED')
         and not (e.type = 'NOTIFIED' and exists (select 1 from message_events o where o.message_id = mid and o.type = 'OPENED'))
       order by e.seq desc
       limit 1
    $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists hub_transport_keys`.execute(db);
  await sql`drop table if exists move_items`.execute(db);
  await sql`drop table if exists moves`.execute(db);
  await sql`drop index if exists deliveries_person`.execute(db);
  for (const c of ['moved_at', 'cancelled_at', 'opened_at', 'original_opened_at', 'original_delivered_at', 'original_delivery_id', 'kind']) {
    await sql`alter table deliveries drop column if exists ${sql.ref(c)}`.execute(db);
  }
}
