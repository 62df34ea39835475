import { sql } from 'kysely';
import type { AlertChannel } from '../../shared/db/tables/notification-attempts.js';
import { isUuid } from '../../shared/ids/uuid.js';
import { ALERT_QUEUES, QUEUES, type NotificationContext } from './context.js';
import { alertQueueOf, type AlertJob, type DeliveryEvent } from './schedule.js';

/** Overdue by this much before the sweeper looks at an alert: a queue backlog is not a lost job. */
export const SWEEP_GRACE_MS = 120_000;

/**
 * The safety net under the queue: an attempt still SCHEDULED (or SENDING, claimed long ago) well
 * after it was due, whose job the queue no longer has, gets a new job. Postgres, not the queue,
 * is the record of what must be sent, so a Redis that lost writes loses no alert; a job added
 * twice sends once, because the row decides.
 */
export async function sweepLostJobs(ctx: NotificationContext, limit = 500): Promise<number> {
  const now = ctx.clock();
  const cutoff = new Date(now.getTime() - SWEEP_GRACE_MS);
  const rows = await ctx.db
    .selectFrom('notification_attempts')
    .select(['id', 'channel', 'due_at', 'job_id', 'kind'])
    .where('state', 'in', ['SCHEDULED', 'SENDING'])
    .where('due_at', '<', cutoff)
    .where((eb) => eb.or([eb('claimed_at', 'is', null), eb('claimed_at', '<', cutoff)]))
    .orderBy('due_at')
    .limit(limit)
    .execute();
  let requeued = 0;
  for (const r of rows) {
    const queue = ctx.queues.queue<AlertJob>(alertQueueOf(r.channel as AlertChannel));
    if (r.job_id && (await queue.getJob(r.job_id))) continue;
    const jobId = `sweep-${r.id}-${now.getTime()}`;
    await queue.add(r.kind === 'INVITATION' ? 'invitation' : 'alert', { attemptId: r.id, dueAt: r.due_at.toISOString() }, { jobId });
    await sql`update notification_attempts set job_id = ${jobId} where id = ${r.id}`.execute(ctx.db);
    requeued++;
  }
  if (requeued > 0) ctx.logger.warn({ requeued }, 'queued overdue alerts whose jobs were lost');
  return requeued;
}

/**
 * Jobs that failed for want of Postgres or the queue, not because of their alert, run again. A
 * job whose processor could not even put it back to sleep (the database down, which on the
 * PostgreSQL backend is the queue too) ends up failed; its alert is still open (SCHEDULED or
 * SENDING: an alert refused by its peer is closed before its job fails), and the row decides what
 * the new run does. A delivery event is retried while it has runs left (the handler is idempotent;
 * a poison event is not retried forever).
 */
export async function retryStrandedJobs(ctx: NotificationContext, limit = 500): Promise<number> {
  let retried = 0;
  for (const name of ALERT_QUEUES) {
    const failed = await ctx.queues.queue<AlertJob>(name).getFailed(0, limit - 1);
    const ids = failed.map((j) => j.data?.attemptId).filter(isUuid);
    if (ids.length === 0) continue;
    const open = new Set(
      (await ctx.db.selectFrom('notification_attempts').select('id').where('id', 'in', ids).where('state', 'in', ['SCHEDULED', 'SENDING']).execute()).map((r) => r.id),
    );
    for (const job of failed) {
      if (!open.has(job.data?.attemptId)) continue;
      await job.retry('failed');
      retried++;
    }
  }
  for (const job of await ctx.queues.queue<DeliveryEvent>(QUEUES.events).getFailed(0, limit - 1)) {
    if (job.attemptsStarted > ctx.config.NOTIFY_ATTEMPTS * 2) continue;
    await job.retry('failed');
    retried++;
  }
  if (retried > 0) ctx.logger.warn({ retried }, 'retried notification jobs that failed while Postgres or the queue was away');
  return retried;
}
