import type { ColumnType, Selectable } from 'kysely';

/** A signed receipt (JWS) for a sender-facing event; the ingestion service serves and acks them. */
export interface ReceiptsTable {
  id: string;
  message_id: string;
  sender_orgnr: string;
  type: string;
  event_seq: number;
  jws: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  acked_at: Date | null;
}

export type ReceiptRow = Selectable<ReceiptsTable>;
