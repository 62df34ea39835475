import type { ColumnType } from 'kysely';

/** The single row holding the last change sequence number handed out (see docs/registry.md). */
export interface RegistryChangeCounterTable {
  id: number;
  last_seq: string;
}

/** The change feed: gap-free, in commit order. */
export interface RegistryChangesTable {
  seq: string;
  person_id: string;
  kind: string;
  changed_at: ColumnType<Date, Date | string | undefined, never>;
}
