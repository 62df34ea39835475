import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { AttemptState, NotificationAttemptRow } from '../../shared/db/tables/notification-attempts.js';
import type { MessageNotifications } from '../../shared/db/tables/messages.js';
import { appendEvent } from '../../shared/evidence/events.js';
import { findRecipients, type Recipient } from '../../shared/registry/recipients.js';
import { alertQueueOf, type AlertJob } from './schedule.js';
import type { NotificationContext } from './context.js';
import { alertText, invitationText, pickLanguage, type AlertText } from './texts.js';
import { PermanentSendError, TransientSendError } from './transports/types.js';
import { nextInWindow } from './window.js';

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

export type Outcome = 'sent' | 'skipped' | 'failed' | 'cancelled' | 'retry' | 'waiting' | 'done';

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

/**
 * Claims the attempt: SCHEDULED (or SENDING left by a worker that died) becomes SENDING with one
 * more try, committed before any transport is touched, and reads what the alert needs.
 */
async function claim(ctx: NotificationContext, id: string): Promise<Claimed | undefined> {
  const { rows } = await sql<Claimed>`
    with claimed as (
      update notification_attempts a
      set state = 'SENDING', tries = a.tries + 1, claimed_at = now(), ambiguous = a.ambiguous or a.state = 'SENDING'
      where a.id = ${id} and a.state in ('SCHEDULED', 'SENDING')
      returning a.*
    )
    select c.*, m.title, m.language as message_language, m.notifications, s.name as sender_name,
      exists (select 1 from message_events e where e.message_id = c.message_id and e.type = 'OPENED') as opened,
      exists (select 1 from message_events e where e.message_id = c.message_id and e.type = 'NOTIFIED') as notified
    from claimed c
    left join messages m on m.id = c.message_id
    left join senders s on s.orgnr = c.sender_orgnr`.execute(ctx.db);
  return rows[0];
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
  await ctx.db.transaction().execute(async (trx) => {
    const done = await trx
      .updateTable('notification_attempts')
      .set({ state, reason, finished_at: at })
      .where('id', '=', a.id)
      .where('state', '=', 'SENDING')
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
  | { kind: 'done' }
  | { kind: 'failed'; reason: FailReason }
  | { kind: 'retry'; error: TransientSendError };

/**
 * Sends under the row lock: the row is locked (NOWAIT) while the transport works, so two live
 * workers never send the same attempt; SENT, the NOTIFIED event and its receipt commit together.
 */
async function sendLocked(ctx: NotificationContext, a: Claimed, r: Recipient): Promise<SendOutcome> {
  const text = content(a, r);
  return ctx.db.transaction().execute(async (trx): Promise<SendOutcome> => {
    const row = await sql<{ state: AttemptState }>`select state from notification_attempts where id = ${a.id} for update nowait`.execute(trx);
    if (row.rows[0]?.state !== 'SENDING') return { kind: 'done' };
    let ref: string;
    try {
      const sent =
        a.channel === 'email'
          ? await ctx.email().send({ key: a.id, to: r.email!.address, subject: text.subject, text: text.body })
          : await ctx.sms().send({ key: a.id, to: r.mobile!.address, text: text.body });
      ref = sent.ref;
    } catch (err) {
      const at = ctx.clock();
      const permanent = err instanceof PermanentSendError;
      const transient = err instanceof TransientSendError ? err : new TransientSendError(permanent ? '' : 'transport error');
      if (permanent || a.tries >= ctx.config.NOTIFY_ATTEMPTS) {
        const reason: FailReason = permanent ? 'REJECTED' : 'RETRIES_EXHAUSTED';
        await trx
          .updateTable('notification_attempts')
          .set({ state: 'FAILED', reason: `${reason}: ${(err as Error).message}`.slice(0, 500), finished_at: at })
          .where('id', '=', a.id)
          .execute();
        await failedReceipt(ctx, trx, a, reason, at);
        return { kind: 'failed', reason };
      }
      // Nothing (or nothing certain) went out: back to SCHEDULED, the next try resends with the same key.
      await trx
        .updateTable('notification_attempts')
        .set({
          state: 'SCHEDULED',
          reason: transient.message.slice(0, 500),
          ...(transient.retryAfterMs !== undefined ? { tries: sql<number>`tries - 1` as unknown as number } : {}),
        })
        .where('id', '=', a.id)
        .execute();
      return { kind: 'retry', error: transient };
    }
    const at = ctx.clock();
    await trx
      .updateTable('notification_attempts')
      .set({ state: 'SENT', transport_ref: ref, sent_at: at, finished_at: at, reason: null })
      .where('id', '=', a.id)
      .execute();
    if (a.kind === 'ALERT' && a.message_id && !a.notified) await notifiedOnce(ctx, trx, a, at);
    return { kind: 'sent' };
  });
}

/** The first successful alert of a message adds NOTIFIED (legal deadlines run from it). */
async function notifiedOnce(ctx: NotificationContext, trx: Transaction<Database>, a: Claimed, at: Date): Promise<void> {
  // appendEvent's own per-message lock, taken before the check so two channels cannot both add it.
  await sql`select pg_advisory_xact_lock(hashtextextended(${`postbud.events:${a.message_id}`}, 0))`.execute(trx);
  const seen = await trx
    .selectFrom('message_events')
    .select('seq')
    .where('message_id', '=', a.message_id!)
    .where('type', '=', 'NOTIFIED')
    .limit(1)
    .executeTakeFirst();
  if (seen) return;
  await appendEvent(trx, ctx.hub, {
    messageId: a.message_id!,
    type: 'NOTIFIED',
    senderOrgnr: a.sender_orgnr,
    at,
    data: { channel: a.channel, repetition: a.repetition, notifiedAt: at.toISOString() },
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

  const a = await claim(ctx, attemptId);
  if (!a) return 'done';
  const count = (outcome: Outcome) => {
    ctx.outcomes.inc({ channel: a.kind === 'INVITATION' ? 'invitation' : a.channel, outcome });
    return outcome;
  };
  if (a.kind === 'ALERT') {
    if (a.opened) return count((await finish(ctx, a, 'CANCELLED', 'OPENED'), 'cancelled'));
    if (a.title === null) return count((await finish(ctx, a, 'CANCELLED', 'MESSAGE_NOT_FOUND'), 'cancelled'));
  }
  const recipients = await findRecipients(ctx.db, [a.person_id], { now, mailbox: a.kind === 'INVITATION', certificates: false });
  const r = recipients.get(a.person_id);
  if (a.kind === 'INVITATION' && r?.mailbox) return count((await finish(ctx, a, 'CANCELLED', 'HAS_MAILBOX'), 'cancelled'));
  const why = unusable(a, r);
  if (why) return count((await finish(ctx, a, 'SKIPPED', why, why), 'skipped'));

  let outcome: SendOutcome;
  try {
    outcome = await sendLocked(ctx, a, r!);
  } catch (err) {
    // Another live worker holds the row (it is sending right now): look again later.
    if ((err as { code?: string }).code === '55P03') await sleep(job, token, Date.now() + 5000);
    throw err;
  }
  switch (outcome.kind) {
    case 'sent':
      return count('sent');
    case 'done':
      return 'done';
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

