import type { ColumnType, Generated, Selectable } from 'kysely';

/** Organisations allowed to send (agencies). */
export interface SendersTable {
  orgnr: string;
  name: string;
  status: ColumnType<'active' | 'suspended', 'active' | 'suspended' | undefined, 'active' | 'suspended'>;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export type SenderRow = Selectable<SendersTable>;
