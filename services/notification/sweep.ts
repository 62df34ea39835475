import { sql } from 'kysely';
import type { AlertChannel } from '../../shared/db/tables/notification-attempts.js';
import type { NotificationContext } from './context.js';
import { alertQueueOf, type AlertJob } from './schedule.js';

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
