import { sql, type Kysely } from 'kysely';

/**
 * The lookup audit as an append-only stream the registry owns. `record_lookup(...)` is the only
 * way a row gets into `lookup_audit`: the registry calls it for its own lookups, and the
 * ingestion service calls it for capabilities (an answer about a person too), so every service
 * that answers about a person is audited while only the registry's function writes the table.
 * Rows can be neither changed nor removed through SQL (a trigger refuses UPDATE and DELETE).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function record_lookup(p_consumer_org text, p_client_id text, p_api text, p_person_count integer, p_purpose text, p_scopes text)
    returns bigint
    language sql
    as $$
      insert into lookup_audit (consumer_org, client_id, api, person_count, purpose, scopes)
      values (p_consumer_org, p_client_id, p_api, p_person_count, p_purpose, p_scopes)
      returning id
    $$`.execute(db);
  await sql`
    create function lookup_audit_append_only() returns trigger
    language plpgsql
    as $$
    begin
      raise exception 'lookup_audit is append-only' using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);
  await sql`
    create trigger lookup_audit_append_only before update or delete on lookup_audit
    for each row execute function lookup_audit_append_only()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists lookup_audit_append_only on lookup_audit`.execute(db);
  await sql`drop function if exists lookup_audit_append_only()`.execute(db);
  await sql`drop function if exists record_lookup(text, text, text, integer, text, text)`.execute(db);
}
