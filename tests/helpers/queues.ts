import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import { createQueueFactory, type QueueBackendKind, type QueueFactory } from '../../shared/queue/queues.js';

/**
 * The backends to exercise: Postgres always; Redis whenever there is one. The harness refuses to
 * run without Redis when CI=true, so in CI both always run.
 */
export function queueBackends(): QueueBackendKind[] {
  return process.env.TEST_REDIS_URL ? ['postgres', 'redis'] : ['postgres'];
}

/** A queue factory in its own namespace (Redis prefix or Postgres schema), closed at teardown. */
export function testQueues(t: Test, kind: QueueBackendKind, databaseUrl: string): QueueFactory {
  const prefix = `q_${randomBytes(5).toString('hex')}`;
  const redisUrl = kind === 'redis' ? process.env.TEST_REDIS_URL : undefined;
  if (kind === 'redis' && !redisUrl) throw new Error('redis backend requested without TEST_REDIS_URL');
  const queues = createQueueFactory({ redisUrl, databaseUrl, prefix });
  t.teardown(() => queues.close());
  return queues;
}
