import type { ColumnType, Generated } from 'kysely';

/** Every change of a person's reservation, newest last. */
export interface ReservationHistoryTable {
  id: Generated<string>;
  person_id: string;
  reserved: boolean;
  /** citizen | admin | import | seed */
  actor: string;
  changed_at: ColumnType<Date, Date | string | undefined, never>;
}

/** Every change of a person's mailboxes: registered, updated, activated, deactivated, closed, reopened. */
export interface MailboxHistoryTable {
  id: Generated<string>;
  person_id: string;
  mailbox_id: string;
  provider_orgnr: string;
  address: string;
  event: 'registered' | 'updated' | 'activated' | 'deactivated' | 'closed' | 'reopened';
  /** citizen | provider:<orgnr> | admin | import | seed */
  actor: string;
  changed_at: ColumnType<Date, Date | string | undefined, never>;
}
