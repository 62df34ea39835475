import type { ColumnType } from 'kysely';

/** A submitted request's key (owned by ingestion): its fingerprint and the answer it got. */
export interface IdempotencyKeysTable {
  sender_orgnr: string;
  key: string;
  /** SHA-256 (hex) of the message part (canonical JSON) and each document's name, type and hash. */
  request_hash: string;
  message_id: string;
  response: ColumnType<Record<string, unknown>, string, string>;
  created_at: ColumnType<Date, Date | undefined, Date>;
  expires_at: Date;
}
