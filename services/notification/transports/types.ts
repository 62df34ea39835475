/** What a transport gets for one alert; `key` is the idempotency key (the attempt id). */
export interface OutgoingEmail {
  key: string;
  to: string;
  subject: string;
  text: string;
}

export interface OutgoingSms {
  key: string;
  to: string;
  text: string;
}

export interface SendResult {
  /** The transport's reference: the Message-ID, the gateway's id, or the sink entry. */
  ref: string;
}

/** The peer refused for good (SMTP 5xx, gateway 4xx): retrying would not help. */
export class PermanentSendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentSendError';
  }
}

/**
 * Worth retrying (SMTP 4xx, connection trouble, gateway 5xx, timeouts). `ambiguous` when the
 * alert may have reached the peer all the same (no answer after the request left: a timeout, a
 * connection lost after the data): the retry is then a resend under the same key, and is flagged.
 */
export class TransientSendError extends Error {
  constructor(
    message: string,
    /** The peer asked us to slow down (HTTP 429 Retry-After). */
    readonly retryAfterMs?: number,
    readonly ambiguous = false,
  ) {
    super(message);
    this.name = 'TransientSendError';
  }
}

export interface EmailTransport {
  readonly kind: 'smtp' | 'sink';
  send(mail: OutgoingEmail): Promise<SendResult>;
  close(): Promise<void>;
}

export interface SmsTransport {
  readonly kind: 'http' | 'sink';
  send(sms: OutgoingSms): Promise<SendResult>;
  close(): Promise<void>;
}
