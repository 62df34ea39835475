import type { ColumnType, Generated } from 'kysely';

/** One row per lookup request: who, when, how many persons, which API, why (if told). */
export interface LookupAuditTable {
  id: Generated<string>;
  consumer_org: string;
  client_id: string | null;
  api: string;
  person_count: number;
  purpose: string | null;
  scopes: string;
  looked_up_at: ColumnType<Date, Date | string | undefined, never>;
}
