import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Job } from 'bullmq';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { Problem } from '../../../shared/errors/problem.js';
import { ALL_QUEUES, notificationContext, type NotificationContext, type QueueName } from '../context.js';
import { notificationProblems } from '../problems.js';
import { queueStats } from '../queue-stats.js';
import { errors } from '../../../shared/app/schemas.js';

const QueueParam = Type.Enum(ALL_QUEUES);
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

// Only ids leave: job data never holds personal data, but say so by construction.
function failedJson(queue: string, job: Job) {
  const data = (job.data ?? {}) as { attemptId?: unknown; messageId?: unknown };
  return {
    queue,
    id: String(job.id),
    name: job.name,
    failedReason: job.failedReason ?? '',
    attemptsStarted: job.attemptsStarted ?? 0,
    createdAt: new Date(job.timestamp).toISOString(),
    failedAt: iso(job.finishedOn),
    attemptId: typeof data.attemptId === 'string' ? data.attemptId : null,
    messageId: typeof data.messageId === 'string' ? data.messageId : null,
  };
}

/** A failed alert's row goes back to SCHEDULED with fresh tries, then its job runs again. */
async function retryJob(ctx: NotificationContext, job: Job): Promise<void> {
  const attemptId = (job.data as { attemptId?: unknown } | undefined)?.attemptId;
  if (typeof attemptId === 'string') {
    await ctx.db
      .updateTable('notification_attempts')
      .set({ state: 'SCHEDULED', tries: 0, reason: null, finished_at: null })
      .where('id', '=', attemptId)
      .where('state', '=', 'FAILED')
      .execute();
  }
  await job.retry('failed');
}

/** Operators (postbud:admin): queue state, failed jobs and their retry, the development sink. */
const adminRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const ctx = notificationContext(deps);
  const guard = requireClient(SCOPES.admin);
  const tags = ['admin'];

  app.get(
    '/v1/admin/queues',
    { preHandler: guard, schema: { summary: 'Depth, oldest waiting job and failures per queue', tags, security: BEARER_SECURITY, response: { 200: Type.Object({ queues: Type.Array(QueueStatsSchema) }), ...errors() } } },
    async () => ({ queues: await queueStats(ctx) }),
  );

  app.get(
    '/v1/admin/queues/:queue/failed',
    {
      preHandler: guard,
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
      const jobs = await ctx.queues.queue(queue).getFailed(0, request.query.limit - 1);
      return { jobs: jobs.filter(Boolean).map((j) => failedJson(queue, j as Job)) };
    },
  );

  app.post(
    '/v1/admin/queues/:queue/failed/:jobId/retry',
    {
      preHandler: guard,
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
      const job = (await ctx.queues.queue(queue).getJob(jobId)) as Job | undefined;
      if (!job) throw new Problem(notificationProblems.JOB_NOT_FOUND, `No job ${jobId} in ${queue}`);
      if ((await job.getState()) !== 'failed') throw new Problem(notificationProblems.JOB_NOT_FAILED);
      await retryJob(ctx, job);
      return { retried: 1 };
    },
  );

  app.post(
    '/v1/admin/queues/:queue/failed/retry',
    {
      preHandler: guard,
      schema: {
        summary: 'Retry every failed job of a queue (up to 1000 per call)',
        tags,
        security: BEARER_SECURITY,
        params: Type.Object({ queue: QueueParam }),
        response: { 200: Type.Object({ retried: Type.Integer() }), ...errors() },
      },
    },
    async (request) => {
      const jobs = (await ctx.queues.queue(request.params.queue as QueueName).getFailed(0, 999)).filter(Boolean) as Job[];
      let retried = 0;
      for (const job of jobs) {
        await retryJob(ctx, job);
        retried++;
      }
      return { retried };
    },
  );

  app.get(
    '/v1/dev/alerts',
    {
      preHandler: guard,
      schema: {
        summary: 'Recent alerts in the development sink',
        description: 'Where alerts go when SMTP_URL / SMS_GATEWAY_URL are unset. Newest first; each alert once, however often it was resent.',
        tags,
        security: BEARER_SECURITY,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
        response: {
          200: Type.Object({
            sink: Type.Object({ email: Type.Boolean(), sms: Type.Boolean() }),
            alerts: Type.Array(
              Type.Object({
                key: Type.String(),
                channel: Type.Union([Type.Literal('email'), Type.Literal('sms')]),
                at: Type.String({ format: 'date-time' }),
                to: Type.String(),
                subject: Type.Optional(Type.String()),
                text: Type.String(),
              }),
            ),
          }),
          ...errors(),
        },
      },
    },
    async (request) => ({
      sink: { email: !deps.config.SMTP_URL, sms: !deps.config.SMS_GATEWAY_URL },
      alerts: ctx.sink.recent(request.query.limit),
    }),
  );
};

export default adminRoutes;
