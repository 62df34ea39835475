import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { sql, type Kysely } from 'kysely';
import type { Test } from 'tap';
import type { App } from '../../../shared/app/create-app.js';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { issueDevToken, type TokenRequest } from '../../../shared/auth/dev-issuer.js';
import type { Database } from '../../../shared/db/database.js';
import type { Logger } from '../../../shared/logging/logger.js';
import type { MessageNotifications } from '../../../shared/db/tables/messages.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { enqueue, startOutboxRelay, type OutboxRelay } from '../../../shared/outbox/outbox.js';
import type { QueueBackendKind } from '../../../shared/queue/queues.js';
import type { Background } from '../../../shared/runtime/service-module.js';
import { buildApp } from '../../../services/notification/app.js';
import { notificationContext, QUEUES, type NotificationContext } from '../../../services/notification/context.js';
import { startWorkers } from '../../../services/notification/workers.js';
import { testDeps } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';

export const SENDER = '974760673';
export const SENDER_NAME = 'Brønnøysundregistrene';
export const OTHER_SENDER = '889640782';
export const DAY = 86_400_000;

/** A controllable clock, starting at a Wednesday noon in Oslo. */
export function testClock(start = '2026-01-14T11:00:00Z') {
  let now = new Date(start);
  return {
    now: () => now,
    set(to: string | Date) {
      now = new Date(to);
    },
    advance(ms: number) {
      now = new Date(now.getTime() + ms);
    },
  };
}

export interface Harness {
  app: App;
  deps: ServiceDeps & { dataDir: string; databaseUrl: string };
  ctx: NotificationContext;
  db: Kysely<Database>;
  clock: ReturnType<typeof testClock>;
  relay: OutboxRelay;
  workers: Background;
  token(req: Record<string, unknown>): Promise<string>;
}

export async function harness(
  t: Test,
  kind: QueueBackendKind,
  opts: { env?: Record<string, string>; workers?: boolean; start?: string; logger?: Logger } = {},
): Promise<Harness> {
  const clock = testClock(opts.start);
  const deps = await testDeps(t, {
    queue: kind,
    env: { NOTIFY_BACKOFF_MS: '50', NOTIFY_ATTEMPTS: '3', NOTIFY_STALLED_MS: '5000', OUTBOX_POLL_MS: '50', ...opts.env },
  });
  deps.clock = clock.now;
  if (opts.logger) deps.logger = opts.logger;
  const app = await buildApp(deps);
  t.teardown(() => app.close());
  await app.ready();
  const ctx = notificationContext(deps);
  const relay = startOutboxRelay({ db: deps.db.kysely, pool: deps.db.pool, queues: deps.queues, logger: { warn: () => undefined }, pollMs: 50 });
  const workers = opts.workers === false ? { stop: async () => undefined } : await startWorkers(deps);
  // Teardowns run in reverse: workers and relay stop before the queues close.
  t.teardown(async () => {
    await workers.stop();
    await relay.stop();
  });
  await insertSender(deps.db.kysely, SENDER, SENDER_NAME);
  return {
    app,
    deps,
    ctx,
    db: deps.db.kysely,
    clock,
    relay,
    workers,
    token: (req) => issueDevToken(deps.dataDir, { ...req, audience: deps.config.AUTH_AUDIENCE } as TokenRequest),
  };
}

export async function insertSender(db: Kysely<Database>, orgnr: string, name: string, status: 'active' | 'suspended' = 'active'): Promise<void> {
  await sql`insert into senders (orgnr, name, status) values (${orgnr}, ${name}, ${status}) on conflict do nothing`.execute(db);
}

export interface PersonInput {
  personId: string;
  language?: string | null;
  email?: string | null;
  emailUpdatedAt?: Date;
  emailVerifiedAt?: Date | null;
  mobile?: string | null;
  mobileUpdatedAt?: Date;
  mobileVerifiedAt?: Date | null;
  reserved?: boolean;
  status?: 'ACTIVE' | 'DELETED';
}

export async function insertPerson(db: Kysely<Database>, p: PersonInput, now: Date): Promise<void> {
  const email = p.email === undefined ? `person${p.personId.slice(-4)}@example.no` : p.email;
  const mobile = p.mobile === undefined ? `+479${p.personId.slice(-7)}` : p.mobile;
  await sql`insert into persons (person_id, status, reserved, reserved_at, language, email, email_updated_at, email_verified_at, mobile, mobile_updated_at, mobile_verified_at)
    values (${p.personId}, ${p.status ?? 'ACTIVE'}, ${p.reserved ?? false}, ${p.reserved ? now : null}, ${p.language ?? null},
      ${email}, ${email === null ? null : (p.emailUpdatedAt ?? now)}, ${p.emailVerifiedAt ?? null},
      ${mobile}, ${mobile === null ? null : (p.mobileUpdatedAt ?? now)}, ${p.mobileVerifiedAt ?? null})`.execute(db);
}

export interface MessageInput {
  id?: string;
  personId: string;
  senderOrgnr?: string;
  title?: string;
  language?: string;
  availableAt?: Date;
  notifications?: MessageNotifications | null;
  route?: 'DIGITAL' | 'PRINT';
}

/** A message row as intake writes it (only what alerts read matters). */
export async function insertMessage(db: Kysely<Database>, m: MessageInput, now: Date): Promise<string> {
  const id = m.id ?? randomUUID();
  await sql`insert into messages (id, sender_orgnr, person_id, title, language, security_level, available_at, open_receipt, notifications, route, provider_orgnr, package_id, manifest_sha256, documents)
    values (${id}, ${m.senderOrgnr ?? SENDER}, ${m.personId}, ${m.title ?? 'Vedtak om bostøtte'}, ${m.language ?? 'nb'}, 4, ${m.availableAt ?? now}, false,
      ${m.notifications === null ? null : JSON.stringify(m.notifications ?? { email: {}, sms: {}, repeatAfterDays: [0] })}::jsonb,
      ${m.route ?? 'DIGITAL'}, '984661185', ${randomUUID()}, 'x', '[]'::jsonb)`.execute(db);
  return id;
}

/** What storage does on DELIVERED / OPENED of a digital delivery: an evidence event and an outbox job. */
export async function deliveryEvent(h: Harness, messageId: string, type: 'DELIVERED' | 'OPENED'): Promise<void> {
  await h.db.transaction().execute(async (trx) => {
    await appendEvent(trx, h.ctx.hub, { messageId, type, senderOrgnr: SENDER, at: h.clock.now() });
    await enqueue(trx, { queue: QUEUES.events, name: 'delivery-event', data: { messageId, type } });
  });
}

export async function attempts(h: Harness, messageId: string) {
  return h.db.selectFrom('notification_attempts').selectAll().where('message_id', '=', messageId).orderBy('channel').orderBy('repetition').execute();
}

export async function events(h: Harness, messageId: string) {
  return h.db.selectFrom('message_events').select(['type', 'at', 'data']).where('message_id', '=', messageId).orderBy('seq').execute();
}

export async function receipts(h: Harness, messageId: string) {
  return h.db.selectFrom('receipts').select(['type', 'jws', 'sender_orgnr']).where('message_id', '=', messageId).orderBy('event_seq').execute();
}

/** Waits until the attempts of a message are all out of SCHEDULED/SENDING, or as many as `count` are. */
export async function settled(h: Harness, messageId: string, count?: number) {
  return waitFor(`attempts of ${messageId} to settle`, async () => {
    const rows = await attempts(h, messageId);
    const open = rows.filter((r) => r.state === 'SCHEDULED' || r.state === 'SENDING');
    if (count !== undefined) return rows.length - open.length >= count ? rows : undefined;
    return rows.length > 0 && open.length === 0 ? rows : undefined;
  });
}

/** Runs every delayed alert job now (as if real time had caught up with the test clock). */
export async function promoteDelayed(h: Harness): Promise<number> {
  let n = 0;
  for (const name of [QUEUES.email, QUEUES.sms]) {
    for (const job of (await h.ctx.queues.queue(name).getDelayed()) as Job[]) {
      await job.promote().catch(() => undefined);
      n++;
    }
  }
  return n;
}

/** Until the outbox has relayed the scheduling and the jobs sit delayed in their queues. */
export async function delayedCount(h: Harness): Promise<number> {
  const counts = await Promise.all([QUEUES.email, QUEUES.sms].map((q) => h.ctx.queues.queue(q).getDelayedCount()));
  return counts.reduce((a, b) => a + b, 0);
}

export const decodeJws = (jws: string): Record<string, unknown> => JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
