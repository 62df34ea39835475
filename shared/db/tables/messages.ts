import type { ColumnType, Selectable } from 'kysely';

export type MessageRoute = 'DIGITAL' | 'PRINT';

/** `{ email?: {text?}, sms?: {text?}, repeatAfterDays }`: the alerts a sender asked for. */
export interface MessageNotifications {
  email?: { text?: string };
  sms?: { text?: string };
  repeatAfterDays: number[];
}

/** A document as the package manifest lists it (never its bytes). */
export interface MessageDocument {
  name: string;
  mime: string;
  size: number;
  sha256: string;
  main: boolean;
}

/** An accepted letter (owned by ingestion). The documents are sealed in `packages`. */
export interface MessagesTable {
  id: string;
  sender_orgnr: string;
  sender_reference: string | null;
  person_id: string;
  title: string;
  language: string;
  security_level: number;
  available_at: Date;
  open_receipt: boolean;
  notifications: ColumnType<MessageNotifications | null, string | null, string | null>;
  /** Print instructions: the fallback (DIGITAL) or the route's own (PRINT). */
  print: ColumnType<Record<string, unknown> | null, string | null, string | null>;
  route: MessageRoute;
  provider_orgnr: string;
  package_id: string;
  manifest_sha256: string;
  documents: ColumnType<MessageDocument[], string, string>;
  created_at: ColumnType<Date, Date | undefined, never>;
}

export type MessageRow = Selectable<MessagesTable>;
