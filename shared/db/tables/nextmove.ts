import type { ColumnType, Generated } from 'kysely';

type Ts = ColumnType<Date, Date | string | undefined, Date | string>;

/** A message created through the next-move API (owned by ingestion; migration 0022). */
export interface NextMoveMessagesTable {
  message_id: string;
  conv_id: Generated<string>;
  sender_orgnr: string;
  conversation_id: string;
  receiver: string;
  process: string;
  type: 'digital' | 'print';
  sbd: ColumnType<Record<string, unknown>, string, string>;
  sbd_sha256: string;
  state: ColumnType<'OPPRETTET' | 'SENDING' | 'SENDT', 'OPPRETTET' | 'SENDING' | 'SENDT' | undefined, 'OPPRETTET' | 'SENDING' | 'SENDT'>;
  kek_id: string;
  wrapped_key: Buffer;
  events_seen: ColumnType<number, number | undefined, number>;
  finished: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Ts;
  sent_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** One uploaded document of a message not yet sent, encrypted under the message's data key. */
export interface NextMoveDocumentsTable {
  message_id: string;
  seq: number;
  filename: string;
  title: string | null;
  mime: string;
  size: number;
  sha256: string;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
  created_at: Ts;
}

/** A status of a next-move message (numeric id as next-move gives it). */
export interface NextMoveStatusesTable {
  id: Generated<string>;
  message_id: string;
  sender_orgnr: string;
  status: string;
  at: Date;
  event_seq: number | null;
}

export interface NextMoveSubscriptionsTable {
  id: Generated<string>;
  sender_orgnr: string;
  name: string;
  push_endpoint: string;
  resource: string;
  event: string;
  filter: string | null;
  filter_status: string[] | null;
  filter_service: string[] | null;
  filter_direction: string[] | null;
  created_at: Ts;
}

/** Push state of one status event to one subscription. */
export interface NextMovePushesTable {
  subscription_id: string;
  status_id: string;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: Ts;
  delivered_at: Date | null;
  gave_up_at: Date | null;
  last_error: string | null;
  created_at: Ts;
}
