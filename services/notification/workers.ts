import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { ServiceDeps } from '../../shared/app/deps.js';
import type { Background } from '../../shared/runtime/service-module.js';
import { notificationContext, QUEUES, type NotificationContext } from './context.js';
import { backoffMs, processAlert } from './send.js';
import { retryStrandedJobs, sweepLostJobs } from './sweep.js';
import { Group } from './group.js';
import { cancelAlerts, scheduleAlerts, type AlertJob, type DeliveryEvent } from './schedule.js';
import { MOVE_NOTICE_JOB, type MoveNoticeJob } from '../../shared/storage/move-outcome.js';
import { planMoveNotice } from './notices.js';

const isControlFlow = (err: unknown): boolean =>
  err instanceof DelayedError || err instanceof UnrecoverableError || (err instanceof Error && err.name === 'RateLimitError');

/**
 * Outbox jobs carry no BullMQ retry options, so retries are ours: an unexpected error (Postgres
 * away, say) puts the job back to sleep with backoff a bounded number of times, then fails it.
 */
function resilient<T>(ctx: NotificationContext, fn: (job: Job<T>, token?: string) => Promise<unknown>) {
  return async (job: Job<T>, token?: string) => {
    try {
      return await fn(job, token);
    } catch (err) {
      if (isControlFlow(err) || job.attemptsStarted > ctx.config.NOTIFY_ATTEMPTS * 2) throw err;
      ctx.logger.warn({ err, queue: job.queueName, job: job.id }, 'notification job failed; retrying later');
      await job.moveToDelayed(Date.now() + backoffMs(Math.min(ctx.config.NOTIFY_BACKOFF_MS, 10_000), job.attemptsStarted), token);
      throw new DelayedError();
    }
  };
}

/** Delivery events; DELIVERED events arriving together are scheduled in one statement. */
export async function handleDeliveryEvent(ctx: NotificationContext, event: DeliveryEvent, scheduling = new Group((ids: string[]) => scheduleAlerts(ctx, ids))): Promise<number> {
  if (event.type === 'DELIVERED') return scheduling.add(event.messageId);
  if (event.type === 'OPENED') return cancelAlerts(ctx, event.messageId);
  return 0;
}

/** The notification service's workers: delivery events, and one alert worker per channel with its rate limit. */
export async function startWorkers(deps: ServiceDeps): Promise<Background> {
  const ctx = notificationContext(deps);
  const { config } = ctx;
  const stalled = { lockDuration: config.NOTIFY_STALLED_MS, stalledInterval: Math.max(500, Math.floor(config.NOTIFY_STALLED_MS / 2)), maxStalledCount: 20 };
  const scheduling = new Group((ids: string[]) => scheduleAlerts(ctx, ids));
  const workers = [
    ctx.queues.worker<DeliveryEvent>(
      QUEUES.events,
      // The same queue carries storage's move notices (a citizen's move of delivered mail ended).
      resilient<DeliveryEvent>(ctx, (job) => (job.name === MOVE_NOTICE_JOB ? planMoveNotice(ctx, job.data as unknown as MoveNoticeJob) : handleDeliveryEvent(ctx, job.data, scheduling))),
      { concurrency: 100, ...stalled },
    ),
    ctx.queues.worker<AlertJob>(QUEUES.email, resilient<AlertJob>(ctx, (job, token) => processAlert(ctx, job, token)), {
      concurrency: config.NOTIFY_CONCURRENCY,
      limiter: { max: config.NOTIFY_EMAIL_PER_SECOND, duration: 1000 },
      ...stalled,
    }),
    ctx.queues.worker<AlertJob>(QUEUES.sms, resilient<AlertJob>(ctx, (job, token) => processAlert(ctx, job, token)), {
      concurrency: config.NOTIFY_CONCURRENCY,
      limiter: { max: config.NOTIFY_SMS_PER_SECOND, duration: 1000 },
      ...stalled,
    }),
  ];
  for (const w of workers) {
    w.on('failed', (job, err) => ctx.logger.warn({ queue: job?.queueName, job: job?.id, err }, 'notification job failed'));
  }
  const sweeper = setInterval(() => {
    sweepLostJobs(ctx)
      .then(() => retryStrandedJobs(ctx))
      .catch((err: unknown) => ctx.logger.warn({ err }, 'alert sweep failed'));
  }, config.NOTIFY_SWEEP_SECONDS * 1000);
  sweeper.unref();
  return {
    async stop() {
      clearInterval(sweeper);
      await Promise.all(workers.map((w) => w.close()));
      await ctx.close();
    },
  };
}
