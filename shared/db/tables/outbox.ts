import type { ColumnType, Generated, Selectable } from 'kysely';

/** Jobs written in the same transaction as the state change that causes them. */
export interface OutboxTable {
  id: Generated<string>;
  queue: string;
  job_name: string;
  payload: ColumnType<unknown, string, string>;
  /** Delay before the job may run, in milliseconds from relay. */
  delay_ms: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, never, never>;
  relayed_at: ColumnType<Date | null, never, Date>;
}

export type OutboxRow = Selectable<OutboxTable>;
