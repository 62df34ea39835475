import type { ColumnType, Generated, Selectable } from 'kysely';

/** A person's mailbox at a provider; at most one active per person (partial unique index). */
export interface MailboxesTable {
  id: Generated<string>;
  person_id: string;
  provider_orgnr: string;
  address: string;
  /** The mailbox's own DER certificate; null means the provider's is used. */
  certificate: Buffer | null;
  active: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  closed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export type MailboxRow = Selectable<MailboxesTable>;
