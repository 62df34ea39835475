import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { installErrorHandling } from '../errors/error-handler.js';
import { commonProblems, Problem } from '../errors/problem.js';
import { syntheticPersonIdsAllowed } from '../config/config.js';
import { setPersonIdPolicy } from '../ids/person-id.js';
import { createLogger } from '../logging/logger.js';
import type { ServiceDeps } from './deps.js';
import { installHealth } from './health.js';
import { installMetrics } from './metrics.js';
import { Outages } from '../errors/outages.js';
import { installUnreadBodyHandling } from './unread-body.js';

export type App = FastifyInstance;

export interface ServiceInfo {
  name: 'registry' | 'ingestion' | 'storage' | 'notification';
  description: string;
  version?: string;
  /** Largest request body accepted (bytes); multipart uploads set their own limits. */
  bodyLimit?: number;
  /** The service cannot serve requests without the queue backend (default: it only writes the outbox). */
  queueRequired?: boolean;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The common shell of every service: logging with request ids, problem+json errors, auth
 * verifier, rate limits, OpenAPI with a UI at /docs, health and metrics. A service's buildApp
 * calls this and registers its own routes.
 */
export async function createApp(info: ServiceInfo, deps: ServiceDeps): Promise<App> {
  const logger = deps.logger ?? createLogger(info.name, deps.config.LOG_LEVEL);
  // Which personIds this process accepts (synthetic test identities or not) follows its configuration.
  setPersonIdPolicy({ synthetic: syntheticPersonIdsAllowed(deps.config) });
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: info.bodyLimit ?? 1024 * 1024,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, allErrors: true } },
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.decorate('tokenVerifier', deps.verifier);
  app.decorateRequest('principal', null);

  // Dependency outages are logged once at each end, by the error handler and the readiness probe.
  const outages = new Outages(logger);
  installErrorHandling(app, outages);
  installUnreadBodyHandling(app);

  await app.register(rateLimit, {
    max: deps.config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    // Per address: the limit runs before authentication, and keying on an unverified token's
    // org would let anyone drain another organisation's budget.
    allowList: (request) => request.url.startsWith('/health/') || request.url === '/metrics',
    errorResponseBuilder: (_request, context) => {
      return new Problem(commonProblems.RATE_LIMITED, `Limit of ${context.max} requests per minute reached`, {}, {
        'retry-after': String(Math.ceil(context.ttl / 1000)),
      });
    },
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: `postbud ${info.name}`, description: info.description, version: info.version ?? '0.1.0' },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'Maskinporten-shaped access token (machine clients) or ID-porten-shaped token (citizens)',
          },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  installMetrics(app, info.name);
  installHealth(app, deps, { queueRequired: info.queueRequired ?? false, probeMs: deps.config.HEALTH_PROBE_MS, outages });
  return app as unknown as App;
}
