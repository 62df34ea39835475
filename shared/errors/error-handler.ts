import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { causeOf, type Outages } from './outages.js';
import { commonProblems, Problem, PROBLEM_CONTENT_TYPE, type ProblemType } from './problem.js';
import { unavailableDependency } from './unavailable.js';

/** Seconds a client is told to wait when a dependency is down: about a readiness probe or two. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;

/** Fastify's own error codes, mapped to our stable problem types. */
const FASTIFY_CODES: Record<string, ProblemType> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: commonProblems.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: commonProblems.MALFORMED_BODY,
  FST_ERR_CTP_BODY_TOO_LARGE: commonProblems.PAYLOAD_TOO_LARGE,
  FST_ERR_CTP_EMPTY_JSON_BODY: commonProblems.MALFORMED_BODY,
  FST_ERR_CTP_INVALID_JSON_BODY: commonProblems.MALFORMED_BODY,
  FST_ERR_CTP_EMPTY_TYPE: commonProblems.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_TYPE: commonProblems.UNSUPPORTED_MEDIA_TYPE,
  FST_REQ_FILE_TOO_LARGE: commonProblems.PAYLOAD_TOO_LARGE,
  FST_PARTS_LIMIT: commonProblems.PAYLOAD_TOO_LARGE,
  FST_FILES_LIMIT: commonProblems.PAYLOAD_TOO_LARGE,
  FST_FIELDS_LIMIT: commonProblems.PAYLOAD_TOO_LARGE,
  FST_INVALID_MULTIPART_CONTENT_TYPE: commonProblems.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_VALIDATION: commonProblems.VALIDATION,
  FST_ERR_MAX_PARAM_LENGTH: commonProblems.URI_TOO_LONG,
  FST_ERR_BAD_URL: commonProblems.VALIDATION,
};

/** How many schema errors an answer lists (the rest are counted in `moreErrors`). */
export const MAX_VALIDATION_ERRORS = 20;

const clip = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
const MULTIPART_PARSE_ERROR = /^(Unexpected end of (multipart data|form)|Malformed part header|Part terminated early|Multipart: Boundary not found|Unexpected end of file)/;

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  for (const [k, v] of Object.entries(problem.headers)) reply.header(k, v);
  // Every 503 tells the client when to come back, whoever raised it.
  if (problem.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_S));
  return reply
    .code(problem.statusCode)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problem.body(reply.request.url.split('?')[0]));
}

export function toProblem(error: FastifyError | Error): Problem {
  if (error instanceof Problem) return error;
  const fe = error as FastifyError;
  if (fe.validation) {
    // Bounded: with allErrors a large body can fail in thousands of places, and Fastify's message
    // repeats every one (a 300 KB request got a 10.7 MB answer). The first few tell the client enough.
    const errors = fe.validation.slice(0, MAX_VALIDATION_ERRORS).map((v) => ({
      in: fe.validationContext,
      pointer: clip(v.instancePath || '/', 200),
      message: clip(v.message ?? 'invalid', 200),
      ...(v.params && 'additionalProperty' in v.params ? { property: clip(String(v.params.additionalProperty), 200) } : {}),
    }));
    const more = fe.validation.length - errors.length;
    return new Problem(commonProblems.VALIDATION, clip(fe.message, 500), { errors, ...(more > 0 ? { moreErrors: more } : {}) });
  }
  // The multipart parser (busboy) fails a body that ends early or is malformed with plain errors.
  if (fe.statusCode === undefined && MULTIPART_PARSE_ERROR.test(fe.message)) return new Problem(commonProblems.MALFORMED_BODY, `The multipart body could not be parsed: ${fe.message}`);
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new Problem(mapped, fe.message);
  const status = fe.statusCode ?? 500;
  if (status === 429) return new Problem(commonProblems.RATE_LIMITED, fe.message);
  if (status >= 400 && status < 500) {
    const byStatus = Object.values(commonProblems).find((p) => p.status === status);
    return new Problem(byStatus ?? commonProblems.VALIDATION, fe.message);
  }
  return new Problem(commonProblems.INTERNAL, 'An unexpected error occurred; it has been logged with the request id');
}

/**
 * Every error leaves as problem+json; a dependency down is a 503 with Retry-After. 404 and 405 are told apart with a router of our own that
 * knows every registered path, because Fastify answers 404 for a known path with a wrong method.
 */
export function installErrorHandling(app: FastifyInstance, outages?: Outages): void {
  const known = FindMyWay();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (m === 'HEAD' || known.hasRoute(m as HTTPMethod, route.url)) continue;
      known.on(m as HTTPMethod, route.url, () => undefined);
    }
  });

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    // A dependency down is the client's cue to retry, not our fault: 503, and no stack per request
    // (the outage is logged once at each end, with a count).
    const down = error instanceof Problem ? undefined : unavailableDependency(error);
    if (down) {
      outages?.down(down, causeOf(error), true);
      request.log.debug({ dependency: down }, 'request failed: dependency unavailable');
      return sendProblem(reply, new Problem(commonProblems.UNAVAILABLE, `The ${down === 'database' ? 'database' : 'queue backend'} is unavailable; retry later`));
    }
    let problem = toProblem(error);
    if (problem.problemType === commonProblems.UNSUPPORTED_MEDIA_TYPE && !('accepted' in problem.extensions)) {
      // The route's own 415 type (e.g. ingestion's multipart-required) when it names one.
      const own = (request.routeOptions.config as { unsupportedMediaType?: ProblemType } | undefined)?.unsupportedMediaType;
      const consumes = (request.routeOptions.schema as { consumes?: readonly string[] } | undefined)?.consumes;
      problem = new Problem(own ?? problem.problemType, problem.detail, { ...problem.extensions, accepted: [...(consumes ?? ['application/json'])] }, problem.headers);
    }
    if (problem.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: problem.problemType.code }, 'request rejected');
    return sendProblem(reply, problem);
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = (['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const).filter((m) => known.find(m, path) !== null);
    if (allowed.length > 0) {
      return sendProblem(
        reply,
        new Problem(commonProblems.METHOD_NOT_ALLOWED, `${request.method} is not allowed here`, { allowed }, { allow: allowed.join(', ') }),
      );
    }
    return sendProblem(reply, new Problem(commonProblems.NOT_FOUND, `No route ${request.method} ${path}`));
  });
}
