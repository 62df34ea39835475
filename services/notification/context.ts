import { Counter } from 'prom-client';
import type { Kysely } from 'kysely';
import type { ServiceDeps } from '../../shared/app/deps.js';
import type { Config } from '../../shared/config/config.js';
import { HubKeys } from '../../shared/crypto/hub-keys.js';
import { keyringFor } from '../../shared/crypto/keyring.js';
import type { Database } from '../../shared/db/database.js';
import { createLogger, type Logger } from '../../shared/logging/logger.js';
import type { QueueFactory } from '../../shared/queue/queues.js';
import { DevSink } from './transports/sink.js';
import { smsGatewayTransport } from './transports/sms-http.js';
import { smtpTransport } from './transports/smtp.js';
import type { EmailTransport, SmsTransport } from './transports/types.js';
import type { DaytimeWindow } from './window.js';

/** Queue names: storage's delivery events arrive on `notification`; one queue per channel, so each has its own rate limit. */
export const QUEUES = {
  events: 'notification',
  email: 'alerts-email',
  sms: 'alerts-sms',
} as const;

export const ALERT_QUEUES = [QUEUES.email, QUEUES.sms] as const;
export const ALL_QUEUES = [QUEUES.events, QUEUES.email, QUEUES.sms] as const;
export type QueueName = (typeof ALL_QUEUES)[number];

export interface NotificationContext {
  config: Config;
  db: Kysely<Database>;
  queues: QueueFactory;
  logger: Logger;
  clock: () => Date;
  window: DaytimeWindow;
  hub: HubKeys;
  sink: DevSink;
  /** Created on first use, closed by the background's stop. */
  email(): EmailTransport;
  sms(): SmsTransport;
  /** Alert outcomes in this process, for /metrics. */
  outcomes: Counter<'channel' | 'outcome'>;
  /** Sends whose outcome this process could not know (each is resent under its key, flagged ambiguous). */
  ambiguousSends: Counter<'channel' | 'cause'>;
  close(): Promise<void>;
}

const cache = new WeakMap<object, NotificationContext>();

/** One context per service deps: the HTTP app and the workers of a process share the sink and the transports. */
export function notificationContext(deps: ServiceDeps): NotificationContext {
  const known = cache.get(deps.db);
  if (known) return known;
  const { config } = deps;
  if (config.NOTIFY_WINDOW_START >= config.NOTIFY_WINDOW_END) {
    throw new Error('NOTIFY_WINDOW_START must be before NOTIFY_WINDOW_END');
  }
  const logger = deps.logger ?? createLogger('notification', config.LOG_LEVEL);
  const clock = deps.clock ?? (() => new Date());
  const sink = new DevSink(config.NOTIFY_SINK_SIZE, logger, clock);
  let email: EmailTransport | undefined;
  let sms: SmsTransport | undefined;
  const ctx: NotificationContext = {
    config,
    db: deps.db.kysely,
    queues: deps.queues,
    logger,
    clock,
    window: { start: config.NOTIFY_WINDOW_START, end: config.NOTIFY_WINDOW_END, timeZone: config.NOTIFY_TIME_ZONE },
    hub: new HubKeys(deps.db.kysely, keyringFor(config)),
    sink,
    email() {
      email ??= config.SMTP_URL
        ? smtpTransport({
            url: config.SMTP_URL,
            user: config.SMTP_USER,
            password: config.SMTP_PASSWORD,
            requireTls: config.SMTP_REQUIRE_TLS,
            rejectUnauthorized: config.SMTP_TLS_REJECT_UNAUTHORIZED,
            poolSize: config.SMTP_POOL_SIZE,
            from: config.NOTIFY_FROM,
          })
        : sink.emailTransport();
      return email;
    },
    sms() {
      sms ??= config.SMS_GATEWAY_URL
        ? smsGatewayTransport({
            url: config.SMS_GATEWAY_URL,
            user: config.SMS_GATEWAY_USER,
            password: config.SMS_GATEWAY_PASSWORD,
            sender: config.SMS_SENDER,
            timeoutMs: config.SMS_TIMEOUT_MS,
            maxSockets: config.NOTIFY_CONCURRENCY,
          })
        : sink.smsTransport();
      return sms;
    },
    outcomes: new Counter({
      name: 'notification_alerts_total',
      help: 'Alerts and invitations handled by this process, by channel and outcome',
      labelNames: ['channel', 'outcome'],
      registers: [],
    }),
    ambiguousSends: new Counter({
      name: 'notification_ambiguous_sends_total',
      help: 'Sends by this process whose outcome is unknown (timeout, connection lost after the request left, claim lost during the send); each is retried under the same key and flagged ambiguous',
      labelNames: ['channel', 'cause'],
      registers: [],
    }),
    async close() {
      const closing = [email?.close(), sms?.close()];
      email = undefined;
      sms = undefined;
      await Promise.all(closing);
    },
  };
  cache.set(deps.db, ctx);
  return ctx;
}
