import multipart from '@fastify/multipart';
import underPressure from '@fastify/under-pressure';
import type { FastifyPluginAsync } from 'fastify';
import { multipartLimits } from '../intake/parts.js';
import { ingestionProblems, intakeOverloaded } from '../problems.js';
import { registerJwksRoute } from '../../../shared/crypto/jwks-route.js';
import { queueAdmin } from '../../../shared/app/queue-admin.js';
import { INGESTION_QUEUE } from '../expiry.js';
import capabilities from './capabilities.js';
import evidence from './evidence.js';
import type { IngestionRouteOptions } from './context.js';
import messages from './messages.js';
import nextMove from './nextmove.js';
import receipts from './receipts.js';
import webhooks from './webhooks.js';

/** The ingestion service's resources; each resource registers from its own file. */
const routes: FastifyPluginAsync<IngestionRouteOptions> = async (app, opts) => {
  const config = opts.deps.config;
  await app.register(multipart, { limits: multipartLimits(config) });
  // Senders verify receipts and webhook signatures against the hub keys; served here too.
  registerJwksRoute(app, () => opts.storage.hub);
  await app.register(capabilities, opts);
  // Load shedding by event-loop delay (@fastify/under-pressure), scoped to the letters: a process
  // too busy to answer in time refuses new letters at once with 503 + Retry-After instead of
  // queueing them; health, metrics and the other resources are not refused.
  await app.register(async (letters) => {
    if (config.INTAKE_MAX_EVENT_LOOP_DELAY_MS > 0) {
      await letters.register(underPressure, {
        maxEventLoopDelay: config.INTAKE_MAX_EVENT_LOOP_DELAY_MS,
        retryAfter: 1,
        pressureHandler: () => {
          opts.intake.shed('pressure');
          return Promise.reject(intakeOverloaded('The intake is too busy to take this letter now'));
        },
      });
    }
    await letters.register(messages, opts);
  });
  await app.register(evidence, opts);
  await app.register(receipts, opts);
  await app.register(webhooks, opts);
  // The expiry queue (delayed jobs the intake writes to the outbox), for operators.
  await app.register(queueAdmin, {
    service: 'ingestion',
    queues: opts.deps.queues,
    names: [INGESTION_QUEUE],
    problems: { jobNotFound: ingestionProblems.JOB_NOT_FOUND, jobNotFailed: ingestionProblems.JOB_NOT_FAILED },
  });
  // The eFormidling next-move API (docs/eformidling.md), with its own error shape.
  await app.register(nextMove, { ...opts, prefix: '/api' });
};

export default routes;
