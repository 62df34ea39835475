import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { AlertChannel } from '../../shared/db/tables/notification-attempts.js';
import { findMessages, type MessageInfo } from '../../shared/messages/messages.js';
import { OUTBOX_JOB_PREFIX } from '../../shared/outbox/outbox.js';
import { QUEUES, type NotificationContext } from './context.js';
import { nextInWindow, type DaytimeWindow } from './window.js';

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

/** A planned attempt row; `insertAttempts` writes it with its job. */
export interface PlannedAttempt {
  id: string;
  kind: 'ALERT' | 'INVITATION';
  message_id: string | null;
  channel: AlertChannel;
  repetition: number;
  after_days: number;
  sender_orgnr: string;
  person_id: string;
  due_at: Date;
}

/** The (channel, repetition) rows a delivered letter asks for, due from `now` (or availableAt). */
function planAlerts(msg: MessageInfo, now: Date, window: DaytimeWindow): PlannedAttempt[] {
  if (msg.route !== 'DIGITAL' || !msg.notifications) return [];
  const channels = (['email', 'sms'] as const).filter((c) => msg.notifications![c] != null);
  const given = msg.notifications.repeatAfterDays;
  const days = [...new Set(Array.isArray(given) && given.length > 0 ? given : DEFAULT_REPEAT_AFTER_DAYS)]
    .filter((d) => Number.isInteger(d) && d >= 0 && d <= 25)
    .sort((a, b) => a - b)
    .slice(0, 10);
  const base = Math.max(now.getTime(), msg.availableAt.getTime());
  return channels.flatMap((channel) =>
    days.map((afterDays, repetition) => ({
      id: randomUUID(),
      kind: 'ALERT' as const,
      message_id: msg.id,
      channel,
      repetition,
      after_days: afterDays,
      sender_orgnr: msg.senderOrgnr,
      person_id: msg.personId,
      due_at: nextInWindow(new Date(base + afterDays * DAY_MS), window),
    })),
  );
}

/**
 * DELIVERED, for a batch of letters: one attempt row per (channel, repetition) each asked for,
 * due at max(acknowledged, availableAt) + days, moved into the daytime window; each new row gets
 * its job through the outbox in the same statement. Running it twice (a redelivered event)
 * inserts nothing and enqueues nothing. Answers, per id, how many alerts it scheduled.
 */
export async function scheduleAlerts(ctx: NotificationContext, messageIds: readonly string[]): Promise<number[]> {
  const found = await findMessages(ctx.db, messageIds);
  const now = ctx.clock();
  const rows = [...found.values()].flatMap((msg) => planAlerts(msg, now, ctx.window));
  const inserted = await insertAttempts(ctx.db, rows, now, 'alert');
  const perMessage = new Map<string, number>();
  for (const r of rows) if (inserted.has(r.id)) perMessage.set(r.message_id!, (perMessage.get(r.message_id!) ?? 0) + 1);
  return messageIds.map((id) => perMessage.get(id.toLowerCase()) ?? 0);
}

/**
 * Inserts attempt rows with their outbox jobs in one statement (so atomically, without a
 * transaction of its own): an alert row that exists already ((message, channel, repetition) is
 * unique) is skipped with its job. The outbox ids are drawn first, so each row is written knowing
 * its job id. Answers the ids of the rows inserted.
 */
export async function insertAttempts(db: Kysely<Database>, rows: readonly PlannedAttempt[], now: Date, name: 'alert' | 'invitation'): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const col = <K extends keyof PlannedAttempt>(k: K) => sql.val(rows.map((r) => r[k]));
  const { rows: inserted } = await sql<{ id: string }>`
    with planned as (
      select t.*, nextval(pg_get_serial_sequence('outbox', 'id')) as outbox_id
      from unnest(${col('id')}::uuid[], ${col('kind')}::text[], ${col('message_id')}::uuid[], ${col('channel')}::text[],
        ${col('repetition')}::int[], ${col('after_days')}::int[], ${col('sender_orgnr')}::text[], ${col('person_id')}::text[],
        ${sql.val(rows.map((r) => r.due_at.toISOString()))}::timestamptz[], ${sql.val(rows.map((r) => alertQueueOf(r.channel)))}::text[],
        ${sql.val(rows.map((r) => JSON.stringify({ attemptId: r.id, dueAt: r.due_at.toISOString() } satisfies AlertJob)))}::jsonb[],
        ${sql.val(rows.map((r) => Math.max(0, r.due_at.getTime() - now.getTime())))}::int[])
        as t(id, kind, message_id, channel, repetition, after_days, sender_orgnr, person_id, due_at, queue, payload, delay_ms)
    ), inserted as (
      insert into notification_attempts (id, kind, message_id, channel, repetition, after_days, sender_orgnr, person_id, due_at, created_at, job_id)
      select id, kind, message_id, channel, repetition, after_days, sender_orgnr, person_id, due_at, ${now.toISOString()}::timestamptz,
        ${OUTBOX_JOB_PREFIX} || outbox_id
      from planned
      on conflict (message_id, channel, repetition) where message_id is not null do nothing
      returning id
    ), jobs as (
      insert into outbox (id, queue, job_name, payload, delay_ms)
      select p.outbox_id, p.queue, ${name}, p.payload, p.delay_ms from planned p join inserted i on i.id = p.id
    )
    select id from inserted`.execute(db);
  return new Set(inserted.map((r) => r.id));
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
