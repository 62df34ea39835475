import { sql, type Kysely, type Transaction } from 'kysely';
import type { ClientPrincipal } from '../auth/principal.js';
import type { Database } from '../db/database.js';
import { scrubText } from '../logging/logger.js';

type DbLike = Kysely<Database> | Transaction<Database>;

/**
 * The APIs that answer about a person: the registry's own lookup and KRR's (v1, v2), and the
 * ingestion service's capabilities (native, and eFormidling's next-move shape).
 */
export type LookupApi = 'v1' | 'krr-v1' | 'krr-v2' | 'capabilities' | 'eformidling-capabilities';

/** The purpose header as stored: at most 200 characters, with anything shaped like a personId or e-mail scrubbed. */
export const cleanPurpose = (raw: string | undefined): string | null => {
  const v = raw?.trim();
  return v ? scrubText(v).slice(0, 200) : null;
};

/**
 * Records one answer about persons: who asked (org, client id, scopes), when (the database's
 * clock), through which API, how many persons, why (if told). Never which persons.
 *
 * `lookup_audit` belongs to the registry; this goes through the registry's `record_lookup()`
 * (migration 0014), the one writer of that table, so a service that answers about a person
 * audits the answer without writing another service's table.
 */
export async function recordLookup(db: DbLike, client: ClientPrincipal, api: LookupApi, personCount: number, purpose: string | null): Promise<void> {
  await sql`select record_lookup(${client.org}, ${client.clientId ?? null}, ${api}, ${personCount}::integer, ${purpose}, ${[...client.scopes].sort().join(' ')})`.execute(db);
}
