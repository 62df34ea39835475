import type { ColumnType, Selectable } from 'kysely';

/** Append-only, hash-chained evidence log: one chain per message. */
export interface MessageEventsTable {
  message_id: string;
  seq: number;
  type: string;
  at: Date;
  data: ColumnType<Record<string, unknown>, string, never>;
  prev_hash: string | null;
  hash: string;
  /** Its leaf in the Merkle log over all events; null until the sequencer takes it (migration 0018). */
  leaf_index: ColumnType<string | null, never, string>;
}

export type MessageEventRow = Selectable<MessageEventsTable>;
