import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { AlertChannel } from '../../shared/db/tables/notification-attempts.js';
import { findMessage } from '../../shared/messages/messages.js';
import { enqueue, outboxJobId } from '../../shared/outbox/outbox.js';
import { QUEUES, type NotificationContext } from './context.js';
import { nextInWindow } from './window.js';

/** What storage's outbox puts on the `notification` queue when a digital delivery changes. */
export interface DeliveryEvent {
  messageId: string;
  type: 'DELIVERED' | 'OPENED';
}

/** The job that sends one alert or invitation: the rest is read from its attempt row. */
export interface AlertJob {
  attemptId: string;
  /** When the row is due (ISO): the job sleeps until then and inside the daytime window. */
  dueAt?: string;
}

export const DEFAULT_REPEAT_AFTER_DAYS = [0, 7];
const DAY_MS = 86_400_000;

export const alertQueueOf = (channel: AlertChannel): string => (channel === 'email' ? QUEUES.email : QUEUES.sms);

/**
 * DELIVERED: one attempt row per (channel, repetition) the message asked for, due at
 * max(acknowledged, availableAt) + days, moved into the daytime window; each new row gets its job
 * through the outbox in the same transaction. Running it twice (a redelivered event) inserts
 * nothing and enqueues nothing.
 */
export async function scheduleAlerts(ctx: NotificationContext, messageId: string): Promise<number> {
  const msg = await findMessage(ctx.db, messageId);
  if (!msg || msg.route !== 'DIGITAL' || !msg.notifications) return 0;
  const channels = (['email', 'sms'] as const).filter((c) => msg.notifications![c] != null);
  if (channels.length === 0) return 0;
  const given = msg.notifications.repeatAfterDays;
  const days = [...new Set(Array.isArray(given) && given.length > 0 ? given : DEFAULT_REPEAT_AFTER_DAYS)]
    .filter((d) => Number.isInteger(d) && d >= 0 && d <= 25)
    .sort((a, b) => a - b)
    .slice(0, 10);
  const now = ctx.clock();
  const base = Math.max(now.getTime(), msg.availableAt.getTime());
  const rows = channels.flatMap((channel) =>
    days.map((afterDays, repetition) => {
      const id = randomUUID();
      return {
        id,
        kind: 'ALERT' as const,
        message_id: msg.id,
        channel,
        repetition,
        after_days: afterDays,
        sender_orgnr: msg.senderOrgnr,
        person_id: msg.personId,
        due_at: nextInWindow(new Date(base + afterDays * DAY_MS), ctx.window),
      };
    }),
  );
  return ctx.db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('notification_attempts')
      .values(rows)
      .onConflict((oc) => oc.columns(['message_id', 'channel', 'repetition']).where('message_id', 'is not', null).doNothing())
      .returning(['id', 'channel', 'due_at'])
      .execute();
    await enqueueAttempts(trx, inserted, now);
    return inserted.length;
  });
}

/** Outbox jobs for attempt rows, in the caller's transaction; each row remembers its job id. */
export async function enqueueAttempts(
  trx: Transaction<Database>,
  rows: { id: string; channel: AlertChannel; due_at: Date }[],
  now: Date,
  name: 'alert' | 'invitation' = 'alert',
): Promise<void> {
  if (rows.length === 0) return;
  const ids = await enqueue(
    trx,
    rows.map((r) => ({
      queue: alertQueueOf(r.channel),
      name,
      data: { attemptId: r.id, dueAt: r.due_at.toISOString() } satisfies AlertJob,
      delayMs: Math.max(0, r.due_at.getTime() - now.getTime()),
    })),
  );
  await sql`
    update notification_attempts a set job_id = j.job_id
    from unnest(${sql.val(rows.map((r) => r.id))}::uuid[], ${sql.val(ids.map(outboxJobId))}::text[]) as j(id, job_id)
    where a.id = j.id`.execute(trx);
}

/**
 * OPENED: alerts not yet sent are cancelled (a repetition is pointless once the letter is read).
 * The send path checks for OPENED itself too, so a late or lost event cannot cause a send.
 */
export async function cancelAlerts(ctx: NotificationContext, messageId: string): Promise<number> {
  const cancelled = await ctx.db
    .updateTable('notification_attempts')
    .set({ state: 'CANCELLED', reason: 'OPENED', finished_at: sql<Date>`now()` as unknown as Date })
    .where('message_id', '=', messageId)
    .where('state', '=', 'SCHEDULED')
    .returning(['channel', 'job_id'])
    .execute();
  // Tidy the delayed jobs away; one that runs anyway finds its row CANCELLED.
  await Promise.all(
    cancelled.map((r) =>
      r.job_id
        ? ctx.queues
            .queue(alertQueueOf(r.channel))
            .remove(r.job_id)
            .catch(() => 0)
        : 0,
    ),
  );
  return cancelled.length;
}
