import type { Kysely } from 'kysely';
import type { ClientPrincipal } from '../../shared/auth/principal.js';
import type { Database } from '../../shared/db/database.js';
import { cleanPurpose, recordLookup, type LookupApi } from '../../shared/registry/lookup-audit.js';

export { cleanPurpose, type LookupApi };

/** Records one lookup: who asked, through which API, how many persons, why. Never which persons. */
export async function auditLookup(db: Kysely<Database>, client: ClientPrincipal, api: LookupApi, personCount: number, purpose: string | null): Promise<void> {
  await recordLookup(db, client, api, personCount, purpose);
}

export interface AuditQuery {
  org?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Entries with id below this (paging backwards, newest first). */
  before?: string | undefined;
  limit: number;
}

export interface AuditEntry {
  id: string;
  consumerOrg: string;
  clientId: string | null;
  api: string;
  personCount: number;
  purpose: string | null;
  scopes: string;
  lookedUpAt: Date;
}

export async function queryAudit(db: Kysely<Database>, q: AuditQuery): Promise<AuditEntry[]> {
  let query = db
    .selectFrom('lookup_audit')
    .select(['id', 'consumer_org as consumerOrg', 'client_id as clientId', 'api', 'person_count as personCount', 'purpose', 'scopes', 'looked_up_at as lookedUpAt'])
    .orderBy('id', 'desc')
    .limit(q.limit);
  if (q.org) query = query.where('consumer_org', '=', q.org);
  if (q.from) query = query.where('looked_up_at', '>=', q.from);
  if (q.to) query = query.where('looked_up_at', '<', q.to);
  if (q.before) query = query.where('id', '<', q.before);
  return query.execute();
}
