import type { Logger } from '../../../shared/logging/logger.js';
import type { EmailTransport, OutgoingEmail, OutgoingSms, SendResult, SmsTransport } from './types.js';

export interface SinkEntry {
  key: string;
  channel: 'email' | 'sms';
  at: string;
  to: string;
  subject?: string;
  text: string;
}

/**
 * The development sink: where alerts go when no SMTP server or SMS gateway is configured. It logs
 * one line per alert without personal data and keeps the latest ones for the operator's
 * endpoint. Like the gateway contract asks, it is idempotent on the key: a resend is not a second alert.
 */
export class DevSink {
  private readonly entries = new Map<string, SinkEntry>();

  constructor(
    private readonly size: number,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  accept(entry: Omit<SinkEntry, 'at'>): SendResult {
    if (!this.entries.has(entry.key)) {
      this.entries.set(entry.key, { ...entry, at: this.now().toISOString() });
      if (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value!);
      this.logger.info({ channel: entry.channel, alert: entry.key, chars: entry.text.length }, 'alert delivered to the development sink');
    }
    return { ref: `sink:${entry.key}` };
  }

  /** Newest first. */
  recent(limit: number): SinkEntry[] {
    return [...this.entries.values()].reverse().slice(0, limit);
  }

  get count(): number {
    return this.entries.size;
  }

  emailTransport(): EmailTransport {
    return {
      kind: 'sink',
      send: async (m: OutgoingEmail) => this.accept({ key: m.key, channel: 'email', to: m.to, subject: m.subject, text: m.text }),
      close: async () => undefined,
    };
  }

  smsTransport(): SmsTransport {
    return {
      kind: 'sink',
      send: async (m: OutgoingSms) => this.accept({ key: m.key, channel: 'sms', to: m.to, text: m.text }),
      close: async () => undefined,
    };
  }
}
