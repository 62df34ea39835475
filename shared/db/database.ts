import type { OutboxTable } from './tables/outbox.js';

/**
 * The whole schema as Kysely sees it: one entry per table, each table's type in its own file
 * under tables/. Migrations never import these types; they describe the schema at one point in
 * time, these describe it now.
 */
export interface Database {
  outbox: OutboxTable;
}
