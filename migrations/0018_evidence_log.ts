import { sql, type Kysely } from 'kysely';

/**
 * Evidence a third party can check (docs/evidence.md):
 *
 * - every event becomes a leaf of one Merkle log (RFC 9162 hashing): `leaf_index`, assigned by
 *   the storage service's sequencer in commit order, the signed tree heads in `evidence_heads`
 *   (with the right edge of the tree, `frontier`, to extend it) and the hashes of its perfect
 *   subtrees in `evidence_log_nodes`;
 * - evidence is append-only: triggers refuse UPDATE, DELETE and TRUNCATE of events, receipts,
 *   heads, tombstones and hub keys, whoever runs them (only a superuser can switch triggers off,
 *   with `session_replication_role = replica`). The exceptions are exact: the sequencer may set
 *   an event's `leaf_index` once and change nothing else; acknowledging a receipt may set its
 *   `acked_at` once; a retired hub key gets its `retired_at`; and the retention process
 *   (`postbud.evidence_retention = on` in its transaction) may delete a message's events and
 *   receipts only once that message has a signed tombstone, which keeps their leaf hashes;
 * - hub keys get `activates_at`, so a new key is published before it signs.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table message_events add column leaf_index bigint`.execute(db);
  await sql`create unique index message_events_leaf on message_events (leaf_index) where leaf_index is not null`.execute(db);
  await sql`create index message_events_unlogged on message_events (at, message_id, seq) where leaf_index is null`.execute(db);

  await sql`
    create table evidence_heads (
      tree_size bigint primary key,
      root_hash text not null,
      signed_at timestamptz not null,
      jws text not null,
      frontier bytea[] not null
    )`.execute(db);

  // Perfect subtree hashes from level 4 (16 leaves) up, written by the sequencer as subtrees
  // complete: a proof then reads O(log n) of them and at most a few leaves.
  await sql`
    create table evidence_log_nodes (
      level smallint not null,
      idx bigint not null,
      hash bytea not null,
      primary key (level, idx)
    )`.execute(db);

  await sql`
    create table evidence_tombstones (
      message_id uuid primary key,
      sender_orgnr text not null,
      purged_at timestamptz not null,
      jws text not null
    )`.execute(db);
  // The leaves of purged events: the tree over all events stays the same after a purge.
  await sql`
    create table evidence_retired_leaves (
      leaf_index bigint primary key,
      message_id uuid not null,
      seq integer not null,
      hash text not null
    )`.execute(db);

  await sql`alter table hub_keys add column activates_at timestamptz`.execute(db);
  await sql`update hub_keys set activates_at = created_at`.execute(db);
  await sql`alter table hub_keys alter column activates_at set not null, alter column activates_at set default now()`.execute(db);

  await sql`
    create function evidence_refuse() returns trigger language plpgsql as $$
    begin
      raise exception 'evidence is append-only: % on % refused', tg_op, tg_table_name
        using errcode = '42501', hint = 'see docs/evidence.md (retention leaves a signed tombstone)';
    end $$`.execute(db);

  // Events and receipts: one column may be set once (from null), every other kept; and the
  // retention process may delete the rows of a letter that has a tombstone.
  const guard = async (fn: string, table: string, once: string, kept: string[]) => {
    const same = `(${kept.map((c) => `new.${c}`).join(', ')}) is not distinct from (${kept.map((c) => `old.${c}`).join(', ')})`;
    await sql`
      create function ${sql.raw(fn)}() returns trigger language plpgsql as $$
      begin
        if tg_op = 'UPDATE' then
          if old.${sql.raw(once)} is null and ${sql.raw(same)} then
            return new;
          end if;
        elsif current_setting('postbud.evidence_retention', true) = 'on'
              and exists (select 1 from evidence_tombstones t where t.message_id = old.message_id) then
          return old;
        end if;
        raise exception 'evidence is append-only: % on ${sql.raw(table)} refused', tg_op
          using errcode = '42501', hint = 'see docs/evidence.md (retention leaves a signed tombstone)';
      end $$`.execute(db);
  };
  await guard('evidence_events_guard', 'message_events', 'leaf_index', ['message_id', 'seq', 'type', 'at', 'data', 'prev_hash', 'hash']);
  await guard('evidence_receipts_guard', 'receipts', 'acked_at', ['id', 'message_id', 'sender_orgnr', 'type', 'event_seq', 'jws', 'created_at']);

  await sql`
    create function evidence_hub_keys_guard() returns trigger language plpgsql as $$
    begin
      if tg_op = 'UPDATE' and old.retired_at is null
         and (new.kid, new.alg, new.public_jwk, new.private_key, new.kek_id, new.created_at, new.activates_at)
             is not distinct from (old.kid, old.alg, old.public_jwk, old.private_key, old.kek_id, old.created_at, old.activates_at) then
        return new;
      end if;
      raise exception 'hub keys stay published: % on hub_keys refused', tg_op using errcode = '42501';
    end $$`.execute(db);

  await sql`create trigger append_only before update or delete on message_events for each row execute function evidence_events_guard()`.execute(db);
  await sql`create trigger append_only before update or delete on receipts for each row execute function evidence_receipts_guard()`.execute(db);
  await sql`create trigger append_only before update or delete on hub_keys for each row execute function evidence_hub_keys_guard()`.execute(db);
  for (const table of ['evidence_heads', 'evidence_log_nodes', 'evidence_tombstones', 'evidence_retired_leaves']) {
    await sql`create trigger append_only before update or delete on ${sql.table(table)} for each row execute function evidence_refuse()`.execute(db);
  }
  for (const table of ['message_events', 'receipts', 'hub_keys', 'evidence_heads', 'evidence_log_nodes', 'evidence_tombstones', 'evidence_retired_leaves']) {
    await sql`create trigger append_only_truncate before truncate on ${sql.table(table)} for each statement execute function evidence_refuse()`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['message_events', 'receipts', 'hub_keys']) {
    await sql`drop trigger if exists append_only on ${sql.table(table)}`.execute(db);
    await sql`drop trigger if exists append_only_truncate on ${sql.table(table)}`.execute(db);
  }
  for (const table of ['evidence_retired_leaves', 'evidence_tombstones', 'evidence_log_nodes', 'evidence_heads']) await sql`drop table if exists ${sql.table(table)}`.execute(db);
  for (const fn of ['evidence_refuse', 'evidence_events_guard', 'evidence_receipts_guard', 'evidence_hub_keys_guard']) await sql`drop function if exists ${sql.raw(fn)}()`.execute(db);
  await sql`alter table hub_keys drop column if exists activates_at`.execute(db);
  await sql`drop index if exists message_events_unlogged`.execute(db);
  await sql`drop index if exists message_events_leaf`.execute(db);
  await sql`alter table message_events drop column if exists leaf_index`.execute(db);
}
