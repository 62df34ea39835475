import type { Queue } from 'bullmq';
import { Gauge, type Registry } from 'prom-client';
import { ALL_QUEUES, type NotificationContext } from './context.js';

export interface QueueStats {
  name: string;
  waiting: number;
  delayed: number;
  active: number;
  failed: number;
  completed: number;
  /** Age of the oldest job ready to run, seconds (0 when none waits). */
  oldestWaitingSeconds: number;
}

async function oldestWaitingSeconds(queue: Queue, nowMs: number): Promise<number> {
  const [oldest] = await queue.getJobs(['wait'], 0, 0, true);
  if (!oldest) return 0;
  // A job that waited out a delay has been ready only since then.
  const readySince = oldest.timestamp + (oldest.delay ?? 0);
  return Math.max(0, (nowMs - readySince) / 1000);
}

export async function queueStats(ctx: NotificationContext): Promise<QueueStats[]> {
  const now = Date.now();
  return Promise.all(
    ALL_QUEUES.map(async (name) => {
      const q = ctx.queues.queue(name);
      const c = await q.getJobCounts('wait', 'delayed', 'active', 'failed', 'completed');
      return {
        name,
        waiting: c.wait ?? 0,
        delayed: c.delayed ?? 0,
        active: c.active ?? 0,
        failed: c.failed ?? 0,
        completed: c.completed ?? 0,
        oldestWaitingSeconds: await oldestWaitingSeconds(q, now),
      };
    }),
  );
}

/** Queue depth, oldest waiting age and failures, read from the backend at each scrape. */
export function registerQueueMetrics(registry: Registry, ctx: NotificationContext): void {
  let pending: Promise<QueueStats[]> | undefined;
  // One backend read serves both gauges of a scrape.
  const stats = () => {
    pending ??= queueStats(ctx).finally(() => setTimeout(() => (pending = undefined), 250).unref());
    return pending;
  };
  new Gauge({
    name: 'notification_queue_jobs',
    help: 'Jobs in the notification queues by state (failed = failures kept for inspection and retry)',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await stats().catch(() => [])) {
        for (const state of ['waiting', 'delayed', 'active', 'failed', 'completed'] as const) this.set({ queue: s.name, state }, s[state]);
      }
    },
  });
  new Gauge({
    name: 'notification_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job ready to run in each notification queue',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await stats().catch(() => [])) this.set({ queue: s.name }, s.oldestWaitingSeconds);
    },
  });
  registry.registerMetric(ctx.outcomes);
  registry.registerMetric(ctx.ambiguousSends);
}
