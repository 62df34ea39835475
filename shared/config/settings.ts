/**
 * Every setting postbud reads from the environment, in one table. The README's settings table
 * is generated from this list (`npm run docs:config`) and a test keeps the two in step.
 */

export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Parser<T> = (raw: string, name: string) => T;

export interface Setting<T, D extends string | undefined = string | undefined> {
  readonly name: string;
  readonly description: string;
  /** Shown in the README; `undefined` means "unset" (the setting is optional). */
  readonly default: D;
  readonly parse: Parser<T>;
}

const setting = <T, const D extends string | undefined>(name: string, description: string, def: D, parse: Parser<T>): Setting<T, D> => ({
  name,
  description,
  default: def,
  parse,
});

export const asString: Parser<string> = (raw) => raw;

export const asInt = (min: number, max: number): Parser<number> => (raw, name) => {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
};

export const asBool: Parser<boolean> = (raw, name) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
};

export const asUrl = (protocols: readonly string[]): Parser<string> => (raw, name) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, 'must be a URL');
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${url.protocol}`);
  }
  return raw;
};

export const asEnum = <T extends string>(values: readonly T[]): Parser<T> => (raw, name) => {
  if (!(values as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${raw}"`);
  }
  return raw as T;
};

export interface TrustedIssuer {
  issuer: string;
  /** https:// URL of a JWKS, or a path to a JWKS file. */
  jwks: string;
}

/** `issuer=jwks` pairs separated by commas or whitespace. */
export const asIssuers: Parser<TrustedIssuer[]> = (raw, name) => {
  const items = raw.split(/[\s,]+/).filter(Boolean);
  if (items.length === 0) throw new ConfigError(name, 'must list at least one issuer=jwks pair');
  return items.map((item) => {
    const at = item.indexOf('=');
    if (at <= 0 || at === item.length - 1) {
      throw new ConfigError(name, `"${item}" is not of the form <issuer>=<jwks URL or file>`);
    }
    return { issuer: item.slice(0, at), jwks: item.slice(at + 1) };
  });
};

export interface KekSpec {
  id: string;
  key: Buffer;
}

/** `id:base64` pairs; each key is 32 bytes (AES-256). Ids are short and stable: they are stored with every wrapped key. */
export const asKeks: Parser<KekSpec[]> = (raw, name) => {
  const items = raw.split(/[\s,]+/).filter(Boolean);
  if (items.length === 0) throw new ConfigError(name, 'must list at least one id:base64 key');
  const seen = new Set<string>();
  return items.map((item) => {
    const at = item.indexOf(':');
    const id = item.slice(0, at);
    if (at <= 0 || !/^[A-Za-z0-9_.-]{1,32}$/.test(id)) throw new ConfigError(name, 'each entry must be <id>:<base64 key>, id of [A-Za-z0-9_.-]{1,32}');
    if (seen.has(id)) throw new ConfigError(name, `key id ${id} is listed twice`);
    seen.add(id);
    const key = Buffer.from(item.slice(at + 1), 'base64');
    if (key.length !== 32) throw new ConfigError(name, `key ${id} must be 32 bytes (base64), got ${key.length}`);
    return { id, key };
  });
};

/** `HH:MM` (24 h) as minutes after midnight. */
export const asClockTime: Parser<number> = (raw, name) => {
  const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(raw.trim());
  if (!m || (m[1] === '24' && m[2] !== '00')) throw new ConfigError(name, `must be a time HH:MM, got "${raw}"`);
  return Number(m[1]) * 60 + Number(m[2]);
};

/** An IANA time zone Intl knows. */
export const asTimeZone: Parser<string> = (raw, name) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: raw });
  } catch {
    throw new ConfigError(name, `is not a known time zone: "${raw}"`);
  }
  return raw;
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const settings = {
  NODE_ENV: setting('NODE_ENV', 'production disables the development issuer unless AUTH_ISSUERS is set', 'development', asEnum(['development', 'production', 'test'] as const)),
  DATA_DIR: setting('DATA_DIR', 'Folder for embedded Postgres data, development issuer keys and KEKs', '.data', asString),
  DATABASE_URL: setting('DATABASE_URL', 'Postgres to use; unset means `npm start` runs an embedded Postgres under DATA_DIR', undefined, asUrl(['postgres:', 'postgresql:'])),
  DATABASE_POOL_SIZE: setting('DATABASE_POOL_SIZE', 'Connections per service process', '10', asInt(1, 200)),
  DATABASE_CONNECT_TIMEOUT_MS: setting('DATABASE_CONNECT_TIMEOUT_MS', 'Longest wait for a database connection (pool busy or server unreachable); a request that waits longer is answered 503 with Retry-After', '10000', asInt(100, 600_000)),
  HEALTH_PROBE_MS: setting('HEALTH_PROBE_MS', 'Interval of the background readiness probe of database, queue backend and migrations (also each check\'s deadline, at least 1 s); /health/ready answers from its last result', '1000', asInt(100, 60_000)),
  EMBEDDED_PG_PORT: setting('EMBEDDED_PG_PORT', 'Port of the embedded Postgres started by `npm start`', '54329', asInt(1, 65535)),
  REDIS_URL: setting('REDIS_URL', 'Redis for BullMQ; unset means BullMQ runs on its PostgreSQL backend in DATABASE_URL', undefined, asUrl(['redis:', 'rediss:'])),
  QUEUE_PREFIX: setting('QUEUE_PREFIX', 'Namespace of all queues: the Redis key prefix, or the Postgres schema of the BullMQ backend', 'postbud', (raw, name) => {
    if (!/^[a-z][a-z0-9_]{0,40}$/.test(raw)) throw new ConfigError(name, 'must match ^[a-z][a-z0-9_]{0,40}$');
    return raw;
  }),
  HOST: setting('HOST', 'Interface the services listen on', '127.0.0.1', asString),
  REGISTRY_PORT: setting('REGISTRY_PORT', 'Port of the registry service', '3001', asInt(0, 65535)),
  INGESTION_PORT: setting('INGESTION_PORT', 'Port of the ingestion service', '3002', asInt(0, 65535)),
  STORAGE_PORT: setting('STORAGE_PORT', 'Port of the storage service', '3003', asInt(0, 65535)),
  NOTIFICATION_PORT: setting('NOTIFICATION_PORT', 'Port of the notification service', '3004', asInt(0, 65535)),
  LOG_LEVEL: setting('LOG_LEVEL', 'pino log level', 'info', asEnum(LOG_LEVELS)),
  AUTH_AUDIENCE: setting('AUTH_AUDIENCE', 'Required `aud` of every access token', 'postbud', asString),
  AUTH_ISSUERS: setting('AUTH_ISSUERS', 'Trusted token issuers as `issuer=jwks` pairs (JWKS https URL or file), comma separated. Unset outside production: the development issuer only', undefined, asIssuers),
  AUTH_CLOCK_TOLERANCE_S: setting('AUTH_CLOCK_TOLERANCE_S', 'Allowed clock skew when checking exp/nbf', '30', asInt(0, 300)),
  AUTH_MAX_TOKEN_LIFETIME_S: setting('AUTH_MAX_TOKEN_LIFETIME_S', 'Longest token lifetime (exp - iat) accepted; longer-lived tokens are refused (Maskinporten and ID-porten issue 120 s by default)', '300', asInt(30, 86_400)),
  SYNTHETIC_PERSON_IDS: setting('SYNTHETIC_PERSON_IDS', 'Accept synthetic test identities as personIds (month + 80 as issued by Test Norge/Tenor, month + 40 as NAV\'s, also as D-numbers). Unset: accepted unless NODE_ENV=production', undefined, asBool),
  RATE_LIMIT_PER_MINUTE: setting('RATE_LIMIT_PER_MINUTE', 'Requests per minute per client (token org or IP) before 429', '6000', asInt(1, 10_000_000)),
  SHUTDOWN_GRACE_MS: setting('SHUTDOWN_GRACE_MS', 'How long a stopping service waits for in-flight requests and jobs', '10000', asInt(100, 600_000)),
  OUTBOX_POLL_MS: setting('OUTBOX_POLL_MS', 'Outbox relay poll interval (it is also woken by NOTIFY)', '1000', asInt(10, 60_000)),
  KEKS: setting('KEKS', 'Key-encryption keys as `id:base64 of 32 bytes` pairs, comma separated; the first wraps new data and signing keys, all unwrap (rotation). Unset outside production: generated in DATA_DIR/keks.json', undefined, asKeks),
  DELIVERY_LEASE_SECONDS: setting('DELIVERY_LEASE_SECONDS', 'How long a listed delivery is hidden from the next listing; unacknowledged, it is offered again after this', '300', asInt(1, 86_400)),
  PACKAGE_RETENTION_HOURS: setting('PACKAGE_RETENTION_HOURS', 'Grace period after acknowledgement before a package ciphertext is purged (evidence is kept)', '168', asInt(0, 87_600)),
  RETENTION_SWEEP_SECONDS: setting('RETENTION_SWEEP_SECONDS', 'How often the storage service purges expired packages and abandoned uploads', '300', asInt(1, 86_400)),
  EVIDENCE_HEAD_SECONDS: setting('EVIDENCE_HEAD_SECONDS', 'How often the storage service adds new events to the Merkle log and signs a tree head (the log\'s maximum merge delay)', '10', asInt(1, 3600)),
  EVIDENCE_RETENTION_DAYS: setting('EVIDENCE_RETENTION_DAYS', 'Days after a letter\'s last event before its events and receipts are deleted, leaving a signed tombstone; 0 keeps evidence forever', '0', asInt(0, 36_500)),
  NOTIFY_WINDOW_START: setting('NOTIFY_WINDOW_START', 'Start of the daytime window for alerts (HH:MM in NOTIFY_TIME_ZONE); an alert due earlier waits for it', '09:00', asClockTime),
  NOTIFY_WINDOW_END: setting('NOTIFY_WINDOW_END', 'End of the daytime window for alerts (HH:MM); an alert due later waits for the next morning', '21:00', asClockTime),
  NOTIFY_TIME_ZONE: setting('NOTIFY_TIME_ZONE', 'Time zone of the daytime window', 'Europe/Oslo', asTimeZone),
  NOTIFY_ATTEMPTS: setting('NOTIFY_ATTEMPTS', 'Tries per alert before it fails with a NOTIFICATION_FAILED receipt', '8', asInt(1, 100)),
  NOTIFY_BACKOFF_MS: setting('NOTIFY_BACKOFF_MS', 'First retry delay of an alert; doubles per try, with 50 % jitter', '30000', asInt(1, 86_400_000)),
  NOTIFY_CONCURRENCY: setting('NOTIFY_CONCURRENCY', 'Alerts a notification process sends at once, per channel', '50', asInt(1, 1000)),
  NOTIFY_EMAIL_PER_SECOND: setting('NOTIFY_EMAIL_PER_SECOND', 'Rate limit of e-mail alerts and invitations across all workers', '5000', asInt(1, 1_000_000)),
  NOTIFY_SMS_PER_SECOND: setting('NOTIFY_SMS_PER_SECOND', 'Rate limit of SMS alerts across all workers', '5000', asInt(1, 1_000_000)),
  NOTIFY_STALLED_MS: setting('NOTIFY_STALLED_MS', 'Lock of an alert job; a worker that dies holding one has its jobs taken over after about this long', '30000', asInt(1000, 600_000)),
  NOTIFY_CLAIM_LEASE_MS: setting('NOTIFY_CLAIM_LEASE_MS', 'How long a claim on an alert lasts unless renewed (a live worker renews it every third of this while it sends); a worker that died mid-send is taken over (resending under the same key, flagged ambiguous) after this', '60000', asInt(1000, 3_600_000)),
  NOTIFY_SEND_TIMEOUT_MS: setting('NOTIFY_SEND_TIMEOUT_MS', 'Longest wait for the e-mail server or SMS gateway to answer one alert (the claim lease is renewed meanwhile); a send given up on is retried under the same key and flagged ambiguous', '30000', asInt(100, 600_000)),
  NOTIFY_SWEEP_SECONDS: setting('NOTIFY_SWEEP_SECONDS', 'How often the notification service looks for overdue alerts whose job the queue lost (e.g. a Redis restored from an old snapshot) and queues them again, and runs again jobs that failed while Postgres or the queue was away', '60', asInt(1, 86_400)),
  NOTIFY_FROM: setting('NOTIFY_FROM', 'From address of alert e-mails', 'postbud <varsel@postbud.invalid>', asString),
  SMTP_URL: setting('SMTP_URL', 'SMTP server for e-mail alerts (smtp:// with STARTTLS, smtps:// for implicit TLS). Unset: alerts go to the development sink', undefined, asUrl(['smtp:', 'smtps:'])),
  SMTP_USER: setting('SMTP_USER', 'SMTP AUTH user', undefined, asString),
  SMTP_PASSWORD: setting('SMTP_PASSWORD', 'SMTP AUTH password', undefined, asString),
  SMTP_REQUIRE_TLS: setting('SMTP_REQUIRE_TLS', 'Refuse to send over smtp:// unless the server offers STARTTLS', 'true', asBool),
  SMTP_TLS_REJECT_UNAUTHORIZED: setting('SMTP_TLS_REJECT_UNAUTHORIZED', 'Verify the SMTP server certificate', 'true', asBool),
  SMTP_POOL_SIZE: setting('SMTP_POOL_SIZE', 'Pooled SMTP connections per process', '5', asInt(1, 100)),
  SMS_GATEWAY_URL: setting('SMS_GATEWAY_URL', 'HTTP SMS gateway (docs/notification.md describes the request). Unset: SMS go to the development sink', undefined, asUrl(['http:', 'https:'])),
  SMS_GATEWAY_USER: setting('SMS_GATEWAY_USER', 'SMS gateway user (HTTP Basic)', undefined, asString),
  SMS_GATEWAY_PASSWORD: setting('SMS_GATEWAY_PASSWORD', 'SMS gateway password (HTTP Basic)', undefined, asString),
  SMS_SENDER: setting('SMS_SENDER', 'Sender id shown on SMS alerts', 'Postbud', asString),
  SMS_TIMEOUT_MS: setting('SMS_TIMEOUT_MS', 'Timeout of one SMS gateway request (a timeout is retried)', '5000', asInt(100, 120_000)),
  INVITATIONS_PER_MINUTE: setting('INVITATIONS_PER_MINUTE', 'Invitation requests per minute per client address', '60', asInt(1, 1_000_000)),
  INVITATION_COOLDOWN_DAYS: setting('INVITATION_COOLDOWN_DAYS', 'A person is invited at most once in this many days, whoever asks', '30', asInt(0, 3650)),
  NOTIFY_SINK_SIZE: setting('NOTIFY_SINK_SIZE', 'Recent alerts the development sink keeps for /v1/dev/alerts', '1000', asInt(1, 100_000)),
  MESSAGE_MAX_BYTES: setting('MESSAGE_MAX_BYTES', 'Largest total size of one letter\'s documents (bytes)', '52428800', asInt(1024, 1024 * 1024 * 1024)),
  MESSAGE_MAX_ATTACHMENTS: setting('MESSAGE_MAX_ATTACHMENTS', 'Most attachments beside the main document of one letter', '200', asInt(0, 1000)),
  BATCH_MAX_LETTERS: setting('BATCH_MAX_LETTERS', 'Most letters in one POST /v1/messages/batch', '100', asInt(1, 1000)),
  BATCH_MAX_BYTES: setting('BATCH_MAX_BYTES', 'Largest total size of the documents of one batch (bytes; the batch is held in memory while its letters are submitted)', '33554432', asInt(1024, 1024 * 1024 * 1024)),
  BATCH_CONCURRENCY: setting('BATCH_CONCURRENCY', 'Letters of one batch in the intake at once (they join its batched lookups and group commits like concurrent single sends)', '16', asInt(1, 64)),
  MOVE_TIMEOUT_SECONDS: setting('MOVE_TIMEOUT_SECONDS', 'A move of delivered mail whose old provider has not exported every letter within this ends FAILED (those letters) and the citizen is told', '604800', asInt(1, 365 * 86_400)),
  MOVE_SWEEP_SECONDS: setting('MOVE_SWEEP_SECONDS', 'How often the storage service ends overdue moves', '60', asInt(1, 86_400)),
  IDEMPOTENCY_TTL_HOURS: setting('IDEMPOTENCY_TTL_HOURS', 'How long an Idempotency-Key and its answer are kept (at least 24 hours)', '24', asInt(24, 24 * 365)),
  INTAKE_BATCH_MAX: setting('INTAKE_BATCH_MAX', 'Most letters the intake commits in one transaction (group commit)', '64', asInt(1, 1000)),
  INTAKE_BATCH_WINDOW_MS: setting('INTAKE_BATCH_WINDOW_MS', 'How long a letter arriving at an idle intake waits for others to share its commit (0: commit at once; under load letters batch while the previous commit runs anyway)', '1', asInt(0, 1000)),
  INTAKE_BATCH_PARALLEL: setting('INTAKE_BATCH_PARALLEL', 'Intake batches committing at once per process (each on its own pooled connection)', '2', asInt(1, 64)),
  INTAKE_QUEUE_MAX: setting('INTAKE_QUEUE_MAX', 'Sealed letters waiting for a batch at most; beyond it a letter is refused with 503 and Retry-After (load shedding)', '512', asInt(1, 100_000)),
  INTAKE_TARGET_LATENCY_MS: setting('INTAKE_TARGET_LATENCY_MS', 'Latency-aware load shedding: letters in flight are bounded adaptively (AIMD): the bound shrinks when even the fastest letter of an interval took longer than this from admission to answer, grows when it was faster and the bound was reached; letters beyond it get 503 and Retry-After (0 turns it off)', '250', asInt(0, 60_000)),
  INTAKE_LATENCY_INTERVAL_MS: setting('INTAKE_LATENCY_INTERVAL_MS', 'The interval over which the intake takes the fastest answer for INTAKE_TARGET_LATENCY_MS and adjusts its bound', '200', asInt(10, 60_000)),
  INTAKE_MAX_BUSY_PERCENT: setting('INTAKE_MAX_BUSY_PERCENT', 'Latency-aware load shedding: the bound on letters in flight also shrinks when the event loop was busy more than this share of an interval (event-loop utilization, %): a saturated loop queues requests before they are admitted, where no sojourn time sees them (0 turns it off)', '95', asInt(0, 100)),
  INTAKE_IN_MEMORY_MAX_BYTES: setting('INTAKE_IN_MEMORY_MAX_BYTES', 'A letter whose request body (Content-Length) is at most this is read whole and sealed in one go, routed by its commit (less CPU); larger or chunked bodies stream. 0 streams every letter', '262144', asInt(0, 1024 * 1024)),
  INTAKE_UPLOADS_MAX: setting('INTAKE_UPLOADS_MAX', 'Letters an ingestion process reads at once; more are refused at once with 503 and Retry-After (load shedding, bounded memory)', '256', asInt(1, 100_000)),
  INTAKE_UPLOADS_PER_CLIENT: setting('INTAKE_UPLOADS_PER_CLIENT', 'Letters one client (token organisation) may have uploading at once; more get 429 with Retry-After', '32', asInt(1, 100_000)),
  INTAKE_MAX_EVENT_LOOP_DELAY_MS: setting('INTAKE_MAX_EVENT_LOOP_DELAY_MS', 'Event-loop delay above which the intake refuses new letters with 503 and Retry-After (@fastify/under-pressure; 0 turns it off)', '1000', asInt(0, 60_000)),
  INTAKE_IDLE_TIMEOUT_MS: setting('INTAKE_IDLE_TIMEOUT_MS', 'An upload that sends no byte for this long is answered 408 and its connection closed', '30000', asInt(10, 3_600_000)),
  INTAKE_BODY_TIMEOUT_MS: setting('INTAKE_BODY_TIMEOUT_MS', 'Longest time one letter upload may take in all before it is answered 408', '600000', asInt(10, 86_400_000)),
  DELIVERY_EXPIRY_SECONDS: setting('DELIVERY_EXPIRY_SECONDS', 'A delivery its provider has not acknowledged within this becomes EXPIRED (or goes to print when the letter has a print fallback)', '604800', asInt(1, 365 * 86_400)),
  EXPIRY_SWEEP_INTERVAL_MS: setting('EXPIRY_SWEEP_INTERVAL_MS', 'How often each ingestion process sweeps for deliveries past their expiry (DELIVERY_EXPIRY_SECONDS; due ones taken with FOR UPDATE SKIP LOCKED, 100 a transaction, again at once while sweeps come back full)', '5000', asInt(10, 3_600_000)),
  WEBHOOK_ALLOW_PRIVATE: setting('WEBHOOK_ALLOW_PRIVATE', 'Development only: allow receipt webhooks on http:// and on loopback/private networks (SSRF protection off)', 'false', asBool),
  WEBHOOK_MAX_ATTEMPTS: setting('WEBHOOK_MAX_ATTEMPTS', 'Attempts to push one receipt before giving up (it stays available for pull)', '12', asInt(1, 100)),
  WEBHOOK_RETRY_BASE_MS: setting('WEBHOOK_RETRY_BASE_MS', 'First retry delay of a failed webhook push; doubles per attempt (capped at an hour)', '5000', asInt(10, 3_600_000)),
  WEBHOOK_POLL_MS: setting('WEBHOOK_POLL_MS', 'How often the ingestion service looks for receipts to push', '1000', asInt(10, 60_000)),
  WEBHOOK_TIMEOUT_MS: setting('WEBHOOK_TIMEOUT_MS', 'Timeout of one webhook request', '10000', asInt(100, 120_000)),
} as const;

export type SettingName = keyof typeof settings;
