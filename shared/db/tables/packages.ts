import type { ColumnType, Selectable } from 'kysely';

export type PackageStatus = 'SEALING' | 'SEALED' | 'PURGED';

/** A sealed package: AES-256-CBC ciphertext in package_chunks, its data key wrapped under a KEK. */
export interface PackagesTable {
  id: string;
  status: ColumnType<PackageStatus, PackageStatus | undefined, PackageStatus>;
  kek_id: string;
  /** KEK-wrapped data key; null once purged (crypto-shredding). */
  wrapped_key: Buffer | null;
  iv: Buffer;
  zip_size: ColumnType<string | null, number | null | undefined, number | null>;
  ciphertext_size: ColumnType<string | null, number | null | undefined, number | null>;
  chunk_count: number | null;
  created_at: ColumnType<Date, Date | undefined, never>;
  sealed_at: Date | null;
  purged_at: Date | null;
}

export type PackageRow = Selectable<PackagesTable>;
