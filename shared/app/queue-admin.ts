import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Job, Queue } from 'bullmq';
import { Gauge, type Registry } from 'prom-client';
import { Type } from 'typebox';
import { BEARER_SECURITY, requireClient } from '../auth/guards.js';
import { SCOPES } from '../auth/scopes.js';
import { commonProblems, Problem, type ProblemType } from '../errors/problem.js';
import type { QueueFactory } from '../queue/queues.js';
import { bullBoard } from './bull-board.js';
import { errors } from './schemas.js';

/**
 * Operators' view of a service's queues, the same in every service (issue 16.8: the expiry and
 * re-addressing queues were visible nowhere): `/v1/admin/queues` (depth, oldest waiting job,
 * failures), the failed jobs of a queue and their retry, Bull Board at `/admin/queues`, and the
 * depth in /metrics as `<service>_queue_jobs{queue,state}` and `<service>_queue_oldest_waiting_seconds`.
 */

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

export interface QueueAdminOptions {
  service: string;
  queues: QueueFactory;
  names: readonly string[];
  problems: { jobNotFound: ProblemType; jobNotFailed: ProblemType };
  /** The letter a failed job is about when its data does not name it (alert jobs carry an attempt id), by job id. */
  messageIds?: (jobs: Job[]) => Promise<Map<string, string>>;
  /** What a retry needs besides BullMQ's (the notification service reopens the attempt row). */
  beforeRetry?: (job: Job) => Promise<void>;
}

async function oldestWaitingSeconds(queue: Queue, nowMs: number): Promise<number> {
  const [oldest] = await queue.getJobs(['wait'], 0, 0, true);
  if (!oldest) return 0;
  // A job that waited out a delay has been ready only since then.
  const readySince = oldest.timestamp + (oldest.delay ?? 0);
  return Math.max(0, (nowMs - readySince) / 1000);
}

/**
 * How long a queue read may take: while Redis is away ioredis queues commands for ever, and a
 * scrape or an operator's call must not hang with them.
 */
const QUEUE_READ_DEADLINE_MS = 2000;

function withinDeadline<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Problem(commonProblems.UNAVAILABLE, 'The queue backend did not answer; retry later')), QUEUE_READ_DEADLINE_MS);
    timer.unref();
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

export function queueStats(queues: QueueFactory, names: readonly string[]): Promise<QueueStats[]> {
  return withinDeadline(readStats(queues, names));
}

async function readStats(queues: QueueFactory, names: readonly string[]): Promise<QueueStats[]> {
  const now = Date.now();
  return Promise.all(
    names.map(async (name) => {
      const q = queues.queue(name);
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
export function registerQueueMetrics(registry: Registry, opts: Pick<QueueAdminOptions, 'service' | 'queues' | 'names'>): void {
  let pending: Promise<QueueStats[]> | undefined;
  // One backend read serves both gauges of a scrape.
  const stats = () => {
    pending ??= queueStats(opts.queues, opts.names).finally(() => setTimeout(() => (pending = undefined), 250).unref());
    return pending;
  };
  new Gauge({
    name: `${opts.service}_queue_jobs`,
    help: `Jobs in the ${opts.service} queues by state (failed = failures kept for inspection and retry)`,
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
    name: `${opts.service}_queue_oldest_waiting_seconds`,
    help: `Age of the oldest job ready to run in each ${opts.service} queue`,
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const s of await stats().catch(() => [])) this.set({ queue: s.name }, s.oldestWaitingSeconds);
    },
  });
}

const QueueStatsSchema = Type.Object({
  name: Type.String(),
  waiting: Type.Integer(),
  delayed: Type.Integer(),
  active: Type.Integer(),
  failed: Type.Integer(),
  completed: Type.Integer(),
  oldestWaitingSeconds: Type.Number(),
});
const FailedJob = Type.Object({
  queue: Type.String(),
  id: Type.String(),
  name: Type.String(),
  failedReason: Type.String(),
  attemptsStarted: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  failedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  attemptId: Type.Union([Type.String(), Type.Null()]),
  messageId: Type.Union([Type.String(), Type.Null()]),
});

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

// Only ids leave: job data may hold a personId (a mailbox change), so fields are picked, never copied.
function failedJson(queue: string, job: Job, messageIds: Map<string, string>) {
  const data = (job.data ?? {}) as { attemptId?: unknown; messageId?: unknown };
  return {
    queue,
    id: String(job.id),
    name: job.name,
    failedReason: (job.failedReason ?? '').slice(0, 1000),
    attemptsStarted: job.attemptsStarted ?? 0,
    createdAt: new Date(job.timestamp).toISOString(),
    failedAt: iso(job.finishedOn),
    attemptId: str(data.attemptId),
    messageId: str(data.messageId) ?? messageIds.get(String(job.id)) ?? null,
  };
}

/** The queue routes and Bull Board of one service, for operators holding postbud:admin. */
export const queueAdmin: FastifyPluginAsyncTypebox<QueueAdminOptions> = async (app, opts) => {
  const guard = requireClient(SCOPES.admin);
  const tags = ['admin'];
  const QueueParam = Type.Enum(opts.names as string[]);
  const retry = async (job: Job) => {
    await opts.beforeRetry?.(job);
    await job.retry('failed');
  };

  app.get(
    '/v1/admin/queues',
    { onRequest: guard, schema: { summary: 'Depth, oldest waiting job and failures per queue', tags, security: BEARER_SECURITY, response: { 200: Type.Object({ queues: Type.Array(QueueStatsSchema) }), ...errors() } } },
    async () => ({ queues: await queueStats(opts.queues, opts.names) }),
  );

  app.get(
    '/v1/admin/queues/:queue/failed',
    {
      onRequest: guard,
      schema: {
        summary: 'Failed jobs of a queue, newest first',
        tags,
        security: BEARER_SECURITY,
        // An unknown queue name fails the params schema: 400, never 404.
        params: Type.Object({ queue: QueueParam }),
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
        response: { 200: Type.Object({ jobs: Type.Array(FailedJob) }), ...errors() },
      },
    },
    async (request) => {
      const { queue } = request.params;
      const jobs = (await withinDeadline(opts.queues.queue(queue).getFailed(0, request.query.limit - 1))).filter(Boolean) as Job[];
      const messageIds = opts.messageIds ? await opts.messageIds(jobs) : new Map<string, string>();
      return { jobs: jobs.map((j) => failedJson(queue, j, messageIds)) };
    },
  );

  app.post(
    '/v1/admin/queues/:queue/failed/:jobId/retry',
    {
      onRequest: guard,
      schema: {
        summary: 'Retry one failed job',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ queue: QueueParam, jobId: Type.String({ minLength: 1, maxLength: 200 }) }),
        response: { 200: Type.Object({ retried: Type.Integer() }), ...errors(404, 409) },
      },
    },
    async (request) => {
      const { queue, jobId } = request.params;
      const job = (await withinDeadline(opts.queues.queue(queue).getJob(jobId))) as Job | undefined;
      if (!job) throw new Problem(opts.problems.jobNotFound, `No job ${jobId} in ${queue}`);
      if ((await job.getState()) !== 'failed') throw new Problem(opts.problems.jobNotFailed);
      await retry(job);
      return { retried: 1 };
    },
  );

  app.post(
    '/v1/admin/queues/:queue/failed/retry',
    {
      onRequest: guard,
      schema: {
        summary: 'Retry every failed job of a queue (up to 1000 per call)',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ queue: QueueParam }),
        response: { 200: Type.Object({ retried: Type.Integer() }), ...errors() },
      },
    },
    async (request) => {
      const jobs = (await withinDeadline(opts.queues.queue(request.params.queue).getFailed(0, 999))).filter(Boolean) as Job[];
      for (const job of jobs) await retry(job);
      return { retried: jobs.length };
    },
  );

  await app.register(bullBoard, { queues: opts.names.map((name) => opts.queues.queue(name)), service: opts.service });
};
