import type { ColumnType, Selectable } from 'kysely';

type Ts = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTs = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export type AttemptState = 'SCHEDULED' | 'SENDING' | 'SENT' | 'SKIPPED' | 'FAILED' | 'CANCELLED';
export type AlertChannel = 'email' | 'sms';

/** One alert (message, channel, repetition) or one invitation e-mail; written by the notification service. */
export interface NotificationAttemptsTable {
  id: string;
  kind: 'ALERT' | 'INVITATION' | 'NOTICE';
  message_id: string | null;
  channel: AlertChannel;
  repetition: ColumnType<number, number | undefined, number>;
  after_days: ColumnType<number, number | undefined, number>;
  sender_orgnr: string;
  person_id: string;
  state: ColumnType<AttemptState, AttemptState | undefined, AttemptState>;
  due_at: Ts;
  job_id: string | null;
  tries: ColumnType<number, number | undefined, number>;
  /** Who holds the claim (SENDING); a claim older than NOTIFY_CLAIM_LEASE_MS may be taken over. */
  claim_token: string | null;
  /** A claim found the row SENDING: an earlier worker died between claim and commit. */
  ambiguous: ColumnType<boolean, boolean | undefined, boolean>;
  transport_ref: string | null;
  reason: string | null;
  created_at: Ts;
  claimed_at: NullableTs;
  sent_at: NullableTs;
  finished_at: NullableTs;
  /** NOTICE: what the e-mail is made from (a move's outcome, MoveOutcome). */
  notice: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  /** NOTICE: one e-mail per key (`move:<id>`). */
  notice_key: ColumnType<string | null, string | null | undefined, string | null>;
}

export type NotificationAttemptRow = Selectable<NotificationAttemptsTable>;
