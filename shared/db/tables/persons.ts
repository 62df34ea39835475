import type { ColumnType, Generated, Selectable } from 'kysely';

type Ts = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTs = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

/** One row per person the registry knows (absent = NOT_REGISTERED). Contact points are columns. */
export interface PersonsTable {
  person_id: string;
  status: ColumnType<'ACTIVE' | 'DELETED', 'ACTIVE' | 'DELETED' | undefined, 'ACTIVE' | 'DELETED'>;
  reserved: ColumnType<boolean, boolean | undefined, boolean>;
  /** When the current reservation took effect; null while not reserved. */
  reserved_at: NullableTs;
  /** When reserved last changed either way (KRR v2 reservasjon_oppdatert). */
  reservation_updated_at: NullableTs;
  language: ColumnType<string | null, string | null | undefined, string | null>;
  language_updated_at: NullableTs;
  email: ColumnType<string | null, string | null | undefined, string | null>;
  email_updated_at: NullableTs;
  email_verified_at: NullableTs;
  mobile: ColumnType<string | null, string | null | undefined, string | null>;
  mobile_updated_at: NullableTs;
  mobile_verified_at: NullableTs;
  created_at: Generated<Date>;
  updated_at: Ts;
}

export type PersonRow = Selectable<PersonsTable>;
