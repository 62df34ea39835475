import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { installErrorHandling, sendProblem, toProblem, type ProblemSender } from '../errors/error-handler.js';
import { commonProblems, Problem } from '../errors/problem.js';
import { syntheticPersonIdsAllowed } from '../config/config.js';
import { setPersonIdPolicy } from '../ids/person-id.js';
import { createLogger } from '../logging/logger.js';
import { lazyChildLogger } from '../logging/request-logger.js';
import { documentTransform, installContentTypeCheck, isRateLimitExempt, operationTransform, SECURITY_SCHEMES } from './api-contract.js';
import type { ServiceDeps } from './deps.js';
import { installHealth } from './health.js';
import { installInputGuard } from './input-guard.js';
import { installMetrics } from './metrics.js';
import { Outages } from '../errors/outages.js';
import { installUnreadBodyHandling } from './unread-body.js';

export type App = FastifyInstance;

declare module 'fastify' {
  interface FastifyInstance {
    /** Dependency outages, logged once at each end (a scope with its own error handling reports to it too). */
    outages: Outages;
    /** Path prefixes whose errors leave in another shape than problem+json (the router's errors too). */
    errorScopes: { prefix: string; send: ProblemSender }[];
  }
}

export interface ServiceInfo {
  name: 'registry' | 'ingestion' | 'storage' | 'notification';
  description: string;
  version?: string;
  /** Largest request body accepted (bytes); multipart uploads set their own limits. */
  bodyLimit?: number;
  /** The service cannot serve requests without the queue backend (default: it only writes the outbox). */
  queueRequired?: boolean;
  /** What else holds for this service's operations, stated after the common rules. */
  rules?: string[];
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** What holds for every operation of every service; stated once at the top of each document. */
const API_RULES = [
  'Errors are RFC 9457 problem details (`application/problem+json`) with a stable `type` per cause and a `code` for log searches, unless an operation documents another error shape.',
  'A request the schema does not allow is refused with 400 (`validation`) naming the field; no text field or object key may contain U+0000 and no number may be NaN or infinite.',
  'A body in a media type the operation does not list is refused with 415 (`unsupported-media-type`), whose `accepted` lists what it takes.',
  'Every operation except health and metrics counts against a per-address rate limit (`x-ratelimit-*` headers; 429 with `Retry-After`).',
  'All four APIs: docs/api.md.',
].join('\n\n');

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
    childLoggerFactory: lazyChildLogger,
    bodyLimit: info.bodyLimit ?? 1024 * 1024,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, allErrors: true } },
    return503OnClosing: true,
    // Errors the router raises before a route runs (a path parameter over 100 characters, a bad
    // percent-encoding) leave as problems too.
    frameworkErrors: (error, request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      const scope = app.errorScopes.find((s) => path.startsWith(s.prefix));
      void (scope?.send ?? sendProblem)(reply, toProblem(error));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.decorate('tokenVerifier', deps.verifier);
  app.decorateRequest('principal', null);

  // Dependency outages are logged once at each end, by the error handler and the readiness probe.
  const outages = new Outages(logger);
  app.decorate('outages', outages);
  app.decorate('errorScopes', []);
  installErrorHandling(app, { outages });
  installUnreadBodyHandling(app);
  // Only the media types a route documents are parsed: text/plain on a JSON route is a 415.
  app.removeContentTypeParser('text/plain');
  installContentTypeCheck(app);
  installInputGuard(app);

  await app.register(rateLimit, {
    max: deps.config.RATE_LIMIT_PER_MINUTE,
    timeWindow: 60_000,
    // Per address: the limit runs before authentication, and keying on an unverified token's
    // org would let anyone drain another organisation's budget.
    allowList: (request) => isRateLimitExempt(request.url.split('?')[0] ?? ''),
    errorResponseBuilder: (_request, context) => {
      return new Problem(commonProblems.RATE_LIMITED, `Limit of ${context.max} requests per minute reached`, {}, {
        'retry-after': String(Math.ceil(context.ttl / 1000)),
      });
    },
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: `postbud ${info.name}`,
        description: [info.description, API_RULES, ...(info.rules ?? [])].join('\n\n'),
        version: info.version ?? '0.1.0',
        license: { name: 'UNLICENSED (internal)', url: 'https://postbud.dev/license' },
        contact: { name: 'postbud operators', url: 'https://postbud.dev/docs/api' },
      },
      components: { securitySchemes: SECURITY_SCHEMES as never },
    },
    transform: operationTransform(info.name) as never,
    transformObject: documentTransform(info.name) as never,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  installMetrics(app, info.name);
  installHealth(app, deps, { queueRequired: info.queueRequired ?? false, probeMs: deps.config.HEALTH_PROBE_MS, outages });
  return app as unknown as App;
}
