import type { Registry } from 'prom-client';
import { queueStats as statsOf, registerQueueMetrics as register, type QueueStats } from '../../shared/app/queue-admin.js';
import { ALL_QUEUES, type NotificationContext } from './context.js';

export type { QueueStats };

export function queueStats(ctx: NotificationContext): Promise<QueueStats[]> {
  return statsOf(ctx.queues, ALL_QUEUES);
}

/** Queue depth (`notification_queue_jobs`, as in every service) and this process's alert counters. */
export function registerQueueMetrics(registry: Registry, ctx: NotificationContext): void {
  register(registry, { service: 'notification', queues: ctx.queues, names: ALL_QUEUES });
  registry.registerMetric(ctx.outcomes);
  registry.registerMetric(ctx.ambiguousSends);
}
