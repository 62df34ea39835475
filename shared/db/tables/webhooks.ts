import type { ColumnType } from 'kysely';

/** A sender's receipt webhook (owned by ingestion; set by an operator). */
export interface WebhooksTable {
  sender_orgnr: string;
  url: string;
  created_at: ColumnType<Date, Date | undefined, Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** Push state of one receipt to its sender's webhook. */
export interface WebhookPushesTable {
  receipt_id: string;
  sender_orgnr: string;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: ColumnType<Date, Date | undefined, Date>;
  delivered_at: Date | null;
  gave_up_at: Date | null;
  last_error: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
}
