import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';

/** What changed about a person, as the change feed tells it. */
export type ChangeKind = 'created' | 'contact' | 'reservation' | 'language' | 'mailbox' | 'certificate' | 'status' | 'import';

export interface ChangeEntry {
  personId: string;
  kind: ChangeKind;
}

/**
 * Appends rows to the change feed from `source` (a query yielding person_id, kind, ord; ord orders
 * the rows within the transaction). Sequence
 * numbers come from the single counter row, updated in the same statement: the row lock it takes
 * is held to commit, so transactions get their numbers in commit order and a rollback returns
 * them. A reader paging by `seq > after` therefore never skips a change that commits later with
 * a smaller number. Call it as the LAST statement of the transaction, so the lock is held only
 * for the commit itself.
 */
async function append(trx: Transaction<Database>, source: RawBuilder<unknown>): Promise<number> {
  const result = await sql<{ n: string }>`
    with src as materialized (${source}),
    bump as (
      update registry_change_counter
         set last_seq = last_seq + (select count(*) from src)
       where id = 1
      returning last_seq, (select count(*) from src) as n
    ),
    ins as (
      insert into registry_changes (seq, person_id, kind)
      select bump.last_seq - bump.n + row_number() over (order by src.ord), src.person_id, src.kind
        from bump cross join src
      returning 1
    )
    select count(*)::text as n from ins`.execute(trx);
  return Number(result.rows[0]?.n ?? 0);
}

export async function recordChanges(trx: Transaction<Database>, entries: readonly ChangeEntry[]): Promise<number> {
  if (entries.length === 0) return 0;
  // One entry per (person, kind) per transaction: readers re-read the person anyway.
  const unique = [...new Map(entries.map((e) => [`${e.personId}:${e.kind}`, e])).values()];
  const ids = unique.map((e) => e.personId);
  const kinds = unique.map((e) => e.kind);
  return append(trx, sql`select person_id, kind, ord from unnest(${sql.val(ids)}::text[], ${sql.val(kinds)}::text[]) with ordinality as u(person_id, kind, ord)`);
}

/** One change of `kind` for every person with an active mailbox at the provider (optionally: without an own certificate). */
export async function recordProviderChanges(trx: Transaction<Database>, providerOrgnr: string, kind: ChangeKind, onlyWithoutOwnCertificate: boolean): Promise<number> {
  return append(
    trx,
    sql`select person_id, ${kind}::text as kind, row_number() over (order by person_id) as ord from mailboxes
         where provider_orgnr = ${providerOrgnr} and active ${onlyWithoutOwnCertificate ? sql`and certificate is null` : sql``}`,
  );
}

export interface ChangeRow {
  seq: string;
  personId: string;
  kind: string;
  changedAt: Date;
}

export async function readChanges(db: Transaction<Database> | Kysely<Database>, after: string, limit: number): Promise<ChangeRow[]> {
  return db
    .selectFrom('registry_changes')
    .select(['seq', 'person_id as personId', 'kind', 'changed_at as changedAt'])
    .where('seq', '>', after)
    .orderBy('seq')
    .limit(limit)
    .execute();
}

export async function lastChangeSeq(db: Kysely<Database>): Promise<string> {
  const row = await db.selectFrom('registry_change_counter').select('last_seq').where('id', '=', 1).executeTakeFirstOrThrow();
  return row.last_seq;
}
