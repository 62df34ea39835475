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
}

export type MessageEventRow = Selectable<MessageEventsTable>;
