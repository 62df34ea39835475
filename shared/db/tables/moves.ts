import type { ColumnType, Generated, Selectable } from 'kysely';

export type MoveState = 'IN_PROGRESS' | 'COMPLETED' | 'PARTIAL' | 'FAILED';
export type MoveItemState = 'PENDING' | 'MOVED' | 'MISSING' | 'FAILED';

/** A citizen's request to move their delivered mail to their new provider (flyttet digitalpost). */
export interface MovesTable {
  id: string;
  person_id: string;
  to_provider_orgnr: string;
  to_mailbox_address: string;
  state: ColumnType<MoveState, MoveState | undefined, MoveState>;
  failure_reason: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
  deadline_at: Date;
  finished_at: Date | null;
  citizen_notified_at: Date | null;
}

/** One letter of a move: the delivery at the old provider, and what became of it. */
export interface MoveItemsTable {
  id: string;
  move_id: string;
  delivery_id: string;
  message_id: string;
  from_provider_orgnr: string;
  state: ColumnType<MoveItemState, MoveItemState | undefined, MoveItemState>;
  reason: string | null;
  new_delivery_id: string | null;
  updated_at: Generated<Date>;
}

/** The hub's RSA transport certificate (exports are sealed for it); private key wrapped under a KEK. */
export interface HubTransportKeysTable {
  id: string;
  certificate: Buffer;
  private_key: Buffer;
  kek_id: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  retired_at: Date | null;
}

export type MoveRow = Selectable<MovesTable>;
export type MoveItemRow = Selectable<MoveItemsTable>;
