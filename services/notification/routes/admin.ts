import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Job } from 'bullmq';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { queueAdmin } from '../../../shared/app/queue-admin.js';
import { errors } from '../../../shared/app/schemas.js';
import { isUuid } from '../../../shared/ids/uuid.js';
import { ALL_QUEUES, notificationContext, type NotificationContext } from '../context.js';
import { notificationProblems } from '../problems.js';

/** The letters failed alert jobs are about: their data names the attempt, the attempt row the letter. */
async function alertMessageIds(ctx: NotificationContext, jobs: Job[]): Promise<Map<string, string>> {
  const byAttempt = new Map<string, string>();
  for (const j of jobs) {
    const attemptId = (j.data as { attemptId?: unknown } | undefined)?.attemptId;
    if (isUuid(attemptId)) byAttempt.set(attemptId, String(j.id));
  }
  if (byAttempt.size === 0) return new Map();
  const rows = await ctx.db
    .selectFrom('notification_attempts')
    .select(['id', 'message_id'])
    .where('id', 'in', [...byAttempt.keys()])
    .execute();
  return new Map(rows.filter((r) => r.message_id).map((r) => [byAttempt.get(r.id)!, r.message_id!]));
}

/** A failed alert's row goes back to SCHEDULED with fresh tries, then its job runs again. */
async function reopenAttempt(ctx: NotificationContext, job: Job): Promise<void> {
  const attemptId = (job.data as { attemptId?: unknown } | undefined)?.attemptId;
  if (typeof attemptId !== 'string') return;
  await ctx.db
    .updateTable('notification_attempts')
    .set({ state: 'SCHEDULED', tries: 0, reason: null, finished_at: null })
    .where('id', '=', attemptId)
    .where('state', '=', 'FAILED')
    .execute();
}

/** Operators (postbud:admin): queue state, failed jobs and their retry, Bull Board (shared/app/queue-admin.ts), the development sink. */
const adminRoutes: FastifyPluginAsyncTypebox<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const ctx = notificationContext(deps);
  const guard = requireClient(SCOPES.admin);
  const tags = ['admin'];

  await app.register(queueAdmin, {
    service: 'notification',
    queues: ctx.queues,
    names: ALL_QUEUES,
    problems: { jobNotFound: notificationProblems.JOB_NOT_FOUND, jobNotFailed: notificationProblems.JOB_NOT_FAILED },
    messageIds: (jobs) => alertMessageIds(ctx, jobs),
    beforeRetry: (job) => reopenAttempt(ctx, job),
  });

  app.get(
    '/v1/dev/alerts',
    {
      onRequest: guard,
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
