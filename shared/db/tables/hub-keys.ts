import type { ColumnType } from 'kysely';

/** The hub's own signing keys (manifests, receipts); private keys wrapped under a KEK. */
export interface HubKeysTable {
  kid: string;
  alg: string;
  public_jwk: ColumnType<Record<string, unknown>, string, never>;
  private_key: Buffer;
  kek_id: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  retired_at: Date | null;
  /** When it starts signing: published (in the JWKS) from created_at, signing from here. */
  activates_at: ColumnType<Date, Date | undefined, never>;
}
