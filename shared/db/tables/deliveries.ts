import type { ColumnType, Generated, Selectable } from 'kysely';

export type DeliveryRoute = 'DIGITAL' | 'PRINT';
export type DeliveryState = 'READY' | 'DELIVERED' | 'OPENED' | 'PRINT_ACCEPTED' | 'PRINTED' | 'RETURNED' | 'FAILED' | 'CANCELLED' | 'MOVED';
/** ORIGINAL: made by the intake; MOVED: a delivered letter offered again to the citizen's new provider. */
export type DeliveryKind = 'ORIGINAL' | 'MOVED';

/** One package addressed to one provider (a digital mailbox provider or the print provider). */
export interface DeliveriesTable {
  id: string;
  message_id: string;
  sender_orgnr: string;
  person_id: string;
  route: DeliveryRoute;
  provider_orgnr: string;
  mailbox_address: string | null;
  title: string;
  security_level: number;
  available_at: Date;
  print_instructions: ColumnType<unknown, string | null | undefined, string | null>;
  package_id: string;
  state: ColumnType<DeliveryState, DeliveryState | undefined, DeliveryState>;
  leased_until: Date | null;
  lease_count: Generated<number>;
  /** CMS header built for envelope_cert_sha256; the bytes before the stored ciphertext. */
  envelope_header: Buffer | null;
  envelope_cert_sha256: Buffer | null;
  /** SHA-256 of envelope_header || ciphertext: the exact bytes the provider downloads. */
  fingerprint: Buffer | null;
  package_size: ColumnType<string | null, number | null | undefined, number | null>;
  created_at: ColumnType<Date, Date | undefined, never>;
  acked_at: Date | null;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  kind: ColumnType<DeliveryKind, DeliveryKind | undefined, DeliveryKind>;
  /** MOVED: the delivery at the old provider this one continues, and its times. */
  original_delivery_id: ColumnType<string | null, string | null | undefined, string | null>;
  original_delivered_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  original_opened_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** When the provider reported OPENED (set from migration 0020 on). */
  opened_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  cancelled_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** When the old provider exported it for a move (state MOVED). */
  moved_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /**
   * When the ingestion service's expiry sweep takes the delivery if it is still READY (from
   * migration 0025 on): written with the delivery, DELIVERY_EXPIRY_SECONDS after it; null for
   * deliveries that never expire (MOVED ones). A delivery whose expiry failed is looked at
   * again later (the sweep moves this on). Only READY rows are in the sweep's index.
   */
  expires_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export type DeliveryRow = Selectable<DeliveriesTable>;
