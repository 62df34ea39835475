import type { ColumnType, Generated, Selectable } from 'kysely';

/** Mailbox providers (digital: Digipost, e-Boks) and print providers. */
export interface ProvidersTable {
  orgnr: string;
  name: string;
  kind: 'digital' | 'print';
  /** DER of the X.509 encryption certificate; required for digital providers. */
  certificate: Buffer | null;
  status: ColumnType<'active' | 'suspended', 'active' | 'suspended' | undefined, 'active' | 'suspended'>;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export type ProviderRow = Selectable<ProvidersTable>;
