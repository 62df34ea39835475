import { randomUUID } from 'node:crypto';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { AttemptState, NotificationAttemptRow } from '../../shared/db/tables/notification-attempts.js';
import type { MessageNotifications } from '../../shared/db/tables/messages.js';
import { appendEvent, appendEvents } from '../../shared/evidence/events.js';
import { findRecipients, type Recipient } from '../../shared/registry/recipients.js';
import { alertQueueOf, type AlertJob } from './schedule.js';
import type { NotificationContext } from './context.js';
import { alertText, invitationText, pickLanguage, type AlertText, moveNoticeText, type MoveNoticeFacts } from './texts.js';
import { PermanentSendError, TransientSendError } from './transports/types.js';
import { nextInWindow } from './window.js';
import { Group } from './group.js';
import { holdLease, LeaseLostError, type LeaseHold } from './lease.js';

/** Why an alert did not go out; the sender sees it in the NOTIFICATION_FAILED receipt. */
export type FailReason =
  | 'NO_CONTACT_POINT'
  | 'CONTACT_POINT_EXPIRED'
  | 'RESERVED'
  | 'NOT_ACTIVE'
  | 'REJECTED'
  | 'RETRIES_EXHAUSTED';

const REASON_TEXT: Record<FailReason, string> = {
  NO_CONTACT_POINT: 'The recipient has no contact point for this channel in the registry',
  CONTACT_POINT_EXPIRED: 'The contact point was neither updated nor verified within 18 months',
  RESERVED: 'The recipient has reserved against digital communication',
  NOT_ACTIVE: 'The recipient is not an active person in the registry',
  REJECTED: 'The e-mail server or SMS gateway refused the alert',
  RETRIES_EXHAUSTED: 'The alert could not be sent after every retry',
};

export type Outcome = 'sent' | 'skipped' | 'failed' | 'cancelled' | 'retry' | 'lost' | 'done';

const MAX_BACKOFF_MS = 6 * 3600_000;

interface Claimed extends NotificationAttemptRow {
  title: string | null;
  message_language: string | null;
  notifications: MessageNotifications | null;
  sender_name: string | null;
  opened: boolean;
  notified: boolean;
}

/** Exponential backoff with 50 % jitter: try n waits base * 2^(n-1) * [0.5, 1). */
export function backoffMs(base: number, tries: number, random = Math.random): number {
  const full = Math.min(MAX_BACKOFF_MS, base * 2 ** Math.max(0, tries - 1));
  return Math.round(full * (0.5 + random() * 0.5));
}

type ClaimResult = { kind: 'claimed'; row: Claimed } | { kind: 'busy'; waitMs: number } | { kind: 'done' };

/**
 * Claims attempts with a lease: SCHEDULED, or SENDING whose lease ran out (its worker died),
 * becomes SENDING with the job's token and one more try, committed before any transport is
 * touched. A live claim by another worker is left alone. Concurrent jobs claim in one statement;
 * the same statement reads what the alerts need.
 */
async function claimBatch(ctx: NotificationContext, items: { id: string; token: string }[]): Promise<ClaimResult[]> {
  const lease = ctx.config.NOTIFY_CLAIM_LEASE_MS;
  const { rows } = await sql<Claimed>`
    with claimed as (
      update notification_attempts a
      set state = 'SENDING', tries = a.tries + 1, claimed_at = now(), claim_token = t.token,
        ambiguous = a.ambiguous or a.state = 'SENDING'
      from unnest(${sql.val(items.map((i) => i.id))}::uuid[], ${sql.val(items.map((i) => i.token))}::uuid[]) as t(id, token)
      where a.id = t.id
        and (a.state = 'SCHEDULED' or (a.state = 'SENDING' and a.claimed_at < now() - ${lease} * interval '1 millisecond'))
      returning a.*
    )
    select c.*, m.title, m.language as message_language, m.notifications, s.name as sender_name,
      exists (select 1 from message_events e where e.message_id = c.message_id and e.type = 'OPENED') as opened,
      exists (select 1 from message_events e where e.message_id = c.message_id and e.type = 'NOTIFIED') as notified
    from claimed c
    left join messages m on m.id = c.message_id
    left join senders s on s.orgnr = c.sender_orgnr`.execute(ctx.db);
  // Keyed by token: two jobs for one attempt in one batch, and only one of them holds the claim.
  const byToken = new Map(rows.map((r) => [r.claim_token!, r]));
  const missed = items.filter((i) => !byToken.has(i.token));
  const held = new Map<string, { state: AttemptState; wait_ms: number | null }>();
  if (missed.length > 0) {
    const res = await sql<{ id: string; state: AttemptState; wait_ms: number | null }>`
      select id, state, extract(epoch from (claimed_at + ${lease} * interval '1 millisecond' - now())) * 1000 as wait_ms
      from notification_attempts where id = any(${sql.val(missed.map((i) => i.id))}::uuid[])`.execute(ctx.db);
    for (const r of res.rows) held.set(r.id, r);
  }
  return items.map((i): ClaimResult => {
    const row = byToken.get(i.token);
    if (row) return { kind: 'claimed', row };
    const h = held.get(i.id);
    if (h?.state === 'SENDING') return { kind: 'busy', waitMs: Math.max(100, Math.ceil(Number(h.wait_ms ?? 0))) };
    return { kind: 'done' };
  });
}

interface SentItem {
  a: Claimed;
  ref: string;
  at: Date;
}

/**
 * SENT for a batch of attempts, in one transaction, each only if its job still holds the claim;
 * the first alert of a letter adds NOTIFIED with its receipt.
 */
async function commitSent(ctx: NotificationContext, items: SentItem[]): Promise<boolean[]> {
  await ctx.hub.signingKey();
  return ctx.db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ id: string }>`
      update notification_attempts a
      set state = 'SENT', transport_ref = t.ref, sent_at = t.at, finished_at = t.at, reason = null
      from unnest(${sql.val(items.map((i) => i.a.id))}::uuid[], ${sql.val(items.map((i) => i.a.claim_token))}::uuid[],
        ${sql.val(items.map((i) => i.ref))}::text[], ${sql.val(items.map((i) => i.at.toISOString()))}::timestamptz[]) as t(id, token, ref, at)
      where a.id = t.id and a.claim_token = t.token and a.state = 'SENDING'
      returning a.id`.execute(trx);
    const done = new Set(rows.map((r) => r.id));
    // The first alert of a letter adds NOTIFIED (legal deadlines run from it); `once` checks
    // under the evidence lock, so e-mail and SMS finishing together add one.
    const first = items.filter((i) => done.has(i.a.id) && i.a.kind === 'ALERT' && i.a.message_id && !i.a.notified);
    await appendEvents(
      trx,
      ctx.hub,
      first.map((i) => ({
        messageId: i.a.message_id!,
        type: 'NOTIFIED',
        once: true,
        senderOrgnr: i.a.sender_orgnr,
        at: i.at,
        data: { channel: i.a.channel, repetition: i.a.repetition, notifiedAt: i.at.toISOString() },
      })),
    );
    return items.map((i) => done.has(i.a.id));
  });
}

interface Groups {
  claim: Group<{ id: string; token: string }, ClaimResult>;
  recipients: Group<{ personId: string; now: Date; mailbox: boolean }, Recipient | undefined>;
  sent: Group<SentItem, boolean>;
}

const groups = new WeakMap<NotificationContext, Groups>();

function groupsOf(ctx: NotificationContext): Groups {
  let g = groups.get(ctx);
  if (!g) {
    g = {
      claim: new Group((items) => claimBatch(ctx, items)),
      recipients: new Group(async (items) => {
        // One registry read for the batch, with the mailbox when any item needs it (invitations).
        const found = await findRecipients(ctx.db, items.map((i) => i.personId), {
          now: items[0]!.now,
          mailbox: items.some((i) => i.mailbox),
          certificates: false,
        });
        return items.map((i) => found.get(i.personId));
      }),
      sent: new Group((items) => commitSent(ctx, items)),
    };
    groups.set(ctx, g);
  }
  return g;
}

async function failedReceipt(ctx: NotificationContext, trx: Transaction<Database>, a: Claimed, reason: FailReason, at: Date): Promise<void> {
  if (a.kind !== 'ALERT' || !a.message_id) return;
  await appendEvent(trx, ctx.hub, {
    messageId: a.message_id,
    type: 'NOTIFICATION_FAILED',
    senderOrgnr: a.sender_orgnr,
    at,
    data: { channel: a.channel, repetition: a.repetition, reason, detail: REASON_TEXT[reason] },
  });
}

/** Ends a claimed attempt without sending (cancelled, skipped by the registry's answer). */
async function finish(ctx: NotificationContext, a: Claimed, state: 'SKIPPED' | 'CANCELLED' | 'FAILED', reason: string, receipt?: FailReason): Promise<void> {
  const at = ctx.clock();
  if (receipt) await ctx.hub.signingKey();
  await ctx.db.transaction().execute(async (trx) => {
    const done = await trx
      .updateTable('notification_attempts')
      .set({ state, reason, finished_at: at })
      .where('id', '=', a.id)
      .where('state', '=', 'SENDING')
      .where('claim_token', '=', a.claim_token)
      .executeTakeFirst();
    if (receipt && done.numUpdatedRows > 0n) await failedReceipt(ctx, trx, a, receipt, at);
  });
}

/** Why the registry's current answer rules this channel out, if it does. */
function unusable(a: Claimed, r: Recipient | undefined): FailReason | undefined {
  if (!r || r.status !== 'ACTIVE') return 'NOT_ACTIVE';
  if (r.reserved) return 'RESERVED';
  const point = a.channel === 'email' ? r.email : r.mobile;
  if (!point) return 'NO_CONTACT_POINT';
  if (!point.usable) return 'CONTACT_POINT_EXPIRED';
  return undefined;
}

function content(a: Claimed, r: Recipient): AlertText {
  const senderName = a.sender_name ?? a.sender_orgnr;
  if (a.kind === 'INVITATION') return invitationText(pickLanguage(r.language), senderName);
  if (a.kind === 'NOTICE') return moveNoticeText(pickLanguage(r.language), a.notice as unknown as MoveNoticeFacts);
  return alertText({
    channel: a.channel,
    language: pickLanguage(r.language, a.message_language),
    senderName,
    title: a.title ?? '',
    custom: a.notifications?.[a.channel]?.text,
  });
}

type SendOutcome =
  | { kind: 'sent' }
  | { kind: 'lost' }
  | { kind: 'failed'; reason: FailReason }
  | { kind: 'retry'; error: TransientSendError };

/** Why the outcome of a send is unknown: the alert may have reached the peer although we saw no success. */
export type AmbiguousCause = 'timeout' | 'connection' | 'lease';

/**
 * Waits for the transport as long as NOTIFY_SEND_TIMEOUT_MS allows and the claim is ours: a lease
 * lost meanwhile (taken over, or not renewable) ends the wait at once, before another worker may
 * send. Either way the send itself may still land, so the error says the outcome is unknown.
 */
function awaitSend<T>(ms: number, work: Promise<T>, lease: LeaseHold): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransientSendError(`no answer within ${ms} ms`, undefined, true)), ms);
  });
  const lost = lease.lost.catch((err: LeaseLostError) => {
    throw Object.assign(new TransientSendError(err.message, undefined, true), { cause: err });
  });
  return Promise.race([work, limit, lost]).finally(() => clearTimeout(timer));
}

function ambiguousCause(error: unknown): AmbiguousCause | undefined {
  if (!(error instanceof TransientSendError) || !error.ambiguous) return undefined;
  if (error.cause instanceof LeaseLostError) return 'lease';
  return /timeout|no answer|ETIMEDOUT/i.test(error.message) ? 'timeout' : 'connection';
}

/**
 * Sends under our claim, holding no database connection while the transport works (the lease is
 * renewed meanwhile). The outcome is committed only if we still hold the claim (same token): SENT
 * with the NOTIFIED event and its receipt together, or FAILED with NOTIFICATION_FAILED, or back to
 * SCHEDULED for a retry, flagged ambiguous when the alert may have gone out all the same.
 */
async function sendClaimed(ctx: NotificationContext, a: Claimed, r: Recipient, lease: LeaseHold): Promise<SendOutcome> {
  const text = content(a, r);
  let ref: string | undefined;
  let error: unknown;
  // Lost before anything left (the registry read outlived the lease): nothing to resend, nothing to commit.
  if (lease.isLost()) return { kind: 'lost' };
  try {
    const sending =
      a.channel === 'email'
        ? ctx.email().send({ key: a.id, to: r.email!.address, subject: text.subject, text: text.body })
        : ctx.sms().send({ key: a.id, to: r.mobile!.address, text: text.body });
    ref = (await awaitSend(ctx.config.NOTIFY_SEND_TIMEOUT_MS, sending, lease)).ref;
  } catch (err) {
    error = err;
  }
  const cause = ambiguousCause(error);
  if (cause) {
    ctx.ambiguousSends.inc({ channel: a.kind === 'INVITATION' ? 'invitation' : a.channel, cause });
    ctx.logger.warn({ attempt: a.id, channel: a.channel, cause }, 'alert send outcome unknown; it will be resent under the same key');
  }
  const at = ctx.clock();
  if (ref !== undefined) return (await groupsOf(ctx).sent.add({ a, ref, at })) ? { kind: 'sent' } : { kind: 'lost' };
  // Warm the signing key outside the transaction: a cold cache would need a second connection.
  await ctx.hub.signingKey();
  return ctx.db.transaction().execute(async (trx): Promise<SendOutcome> => {
    const mine = trx
      .updateTable('notification_attempts')
      .where('id', '=', a.id)
      .where('state', '=', 'SENDING')
      .where('claim_token', '=', a.claim_token);
    const permanent = error instanceof PermanentSendError;
    const transient = error instanceof TransientSendError ? error : new TransientSendError(permanent ? '' : 'transport error');
    if (permanent || a.tries >= ctx.config.NOTIFY_ATTEMPTS) {
      const reason: FailReason = permanent ? 'REJECTED' : 'RETRIES_EXHAUSTED';
      const done = await mine
        .set({ state: 'FAILED', reason: `${reason}: ${(error as Error).message}`.slice(0, 500), finished_at: at, ...(cause ? { ambiguous: true } : {}) })
        .executeTakeFirst();
      if (done.numUpdatedRows === 0n) return { kind: 'lost' };
      await failedReceipt(ctx, trx, a, reason, at);
      return { kind: 'failed', reason };
    }
    // Nothing (or nothing certain: flagged) went out: back to SCHEDULED; the next try resends under the same key.
    const done = await mine
      .set({
        state: 'SCHEDULED',
        reason: transient.message.slice(0, 500),
        ...(cause ? { ambiguous: true } : {}),
        ...(transient.retryAfterMs !== undefined ? { tries: sql<number>`tries - 1` as unknown as number } : {}),
      })
      .executeTakeFirst();
    if (done.numUpdatedRows === 0n) return { kind: 'lost' };
    return { kind: 'retry', error: transient };
  });
}

/** Puts the job back to sleep until `untilMs` (real time) without failing it. */
async function sleep(job: Job, token: string | undefined, untilMs: number): Promise<never> {
  await job.moveToDelayed(untilMs, token);
  throw new DelayedError();
}

/**
 * Processes one alert or invitation job. Every decision is made on the attempt row in Postgres:
 * BullMQ may run a job twice (stalled, re-relayed, Redis restarted), the row lets it send once.
 */
export async function processAlert(ctx: NotificationContext, job: Job<AlertJob>, token?: string): Promise<Outcome> {
  const { attemptId } = job.data;
  const now = ctx.clock();
  // Not yet due, or at night: wait for the next opening of the window (in real time from now).
  const dueAt = job.data.dueAt ? Date.parse(job.data.dueAt) : now.getTime();
  const next = nextInWindow(new Date(Math.max(now.getTime(), dueAt)), ctx.window);
  if (next.getTime() - now.getTime() > 1000) {
    await sleep(job, token, Date.now() + (next.getTime() - now.getTime()));
  }

  const g = groupsOf(ctx);
  const claimStarted = Date.now();
  const claimed = await g.claim.add({ id: attemptId, token: randomUUID() });
  if (claimed.kind === 'done') return 'done';
  // Another worker holds a live claim: look again when its lease runs out.
  if (claimed.kind === 'busy') return sleep(job, token, Date.now() + claimed.waitMs);
  const lease = holdLease(ctx, { id: claimed.row.id, token: claimed.row.claim_token! }, claimStarted);
  try {
    return await processClaimed(ctx, job, token, claimed.row, now, lease);
  } finally {
    lease.stop();
  }
}

/** The claimed part of processAlert: decide, send, commit, while `lease` keeps the claim ours. */
async function processClaimed(ctx: NotificationContext, job: Job<AlertJob>, token: string | undefined, a: Claimed, now: Date, lease: LeaseHold): Promise<Outcome> {
  const g = groupsOf(ctx);
  const count = (outcome: Outcome) => {
    ctx.outcomes.inc({ channel: a.kind === 'INVITATION' ? 'invitation' : a.channel, outcome });
    return outcome;
  };
  if (a.kind === 'ALERT') {
    if (a.opened) return count((await finish(ctx, a, 'CANCELLED', 'OPENED'), 'cancelled'));
    if (a.title === null) return count((await finish(ctx, a, 'CANCELLED', 'MESSAGE_NOT_FOUND'), 'cancelled'));
  }
  const r = await g.recipients.add({ personId: a.person_id, now, mailbox: a.kind === 'INVITATION' });
  if (a.kind === 'INVITATION' && r?.mailbox) return count((await finish(ctx, a, 'CANCELLED', 'HAS_MAILBOX'), 'cancelled'));
  const why = unusable(a, r);
  if (why) return count((await finish(ctx, a, 'SKIPPED', why, why), 'skipped'));

  const outcome = await sendClaimed(ctx, a, r!, lease);
  switch (outcome.kind) {
    case 'sent':
      return count('sent');
    case 'lost':
      // Our claim is no longer ours (another worker took it over after our lease ran out): our
      // commit was refused; the new owner decides, resending under the same key, flagged ambiguous.
      ctx.logger.warn({ attempt: a.id, channel: a.channel, lease: lease.isLost() ?? 'taken-over' }, 'alert outcome not recorded: the claim was lost during the send');
      return count('lost');
    case 'failed':
      count('failed');
      throw new UnrecoverableError(`${outcome.reason}: ${REASON_TEXT[outcome.reason]}`);
    case 'retry': {
      count('retry');
      if (outcome.error.retryAfterMs !== undefined) {
        // The peer asked everyone to slow down: pause the channel's queue, not just this job.
        await ctx.queues.queue(alertQueueOf(a.channel)).rateLimit(outcome.error.retryAfterMs);
        throw Worker.RateLimitError();
      }
      return sleep(job, token, Date.now() + backoffMs(ctx.config.NOTIFY_BACKOFF_MS, a.tries));
    }
  }
}

