import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { ownValue } from '../runtime/own-key.js';
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

/** The problem's own headers, and Retry-After on every 503 (the client is told when to come back, whoever raised it). */
export function problemHeaders(reply: FastifyReply, problem: Problem): FastifyReply {
  for (const [k, v] of Object.entries(problem.headers)) reply.header(k, v);
  if (problem.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER_S));
  return reply;
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return problemHeaders(reply, problem)
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
  const mapped = fe.code ? ownValue(FASTIFY_CODES, fe.code) : undefined;
  if (mapped) return new Problem(mapped, fe.message);
  const status = fe.statusCode ?? 500;
  if (status === 429) return new Problem(commonProblems.RATE_LIMITED, fe.message);
  if (status >= 400 && status < 500) {
    const byStatus = Object.values(commonProblems).find((p) => p.status === status);
    return new Problem(byStatus ?? commonProblems.VALIDATION, fe.message);
  }
  return new Problem(commonProblems.INTERNAL, 'An unexpected error occurred; it has been logged with the request id');
}

/** How a scope's errors leave: problem+json by default; the next-move API (/api/) has its own shape. */
export type ProblemSender = (reply: FastifyReply, problem: Problem) => FastifyReply;

export interface ErrorHandlingOptions {
  outages?: Outages | undefined;
  /** Writes the answer (default: problem+json). */
  send?: ProblemSender;
  /** Turns an error into a problem (default: toProblem); a scope with its own validation shape sets it. */
  toProblem?: (error: FastifyError, request: FastifyRequest) => Problem;
}

/**
 * The problem an error answers with, whatever shape it then leaves in: a dependency down is a 503
 * (the client's cue to retry, not our fault, logged once per outage), and a 415 lists the media
 * types the route takes (and carries the route's own 415 type when it names one).
 */
export function problemFor(error: FastifyError, request: FastifyRequest, opts: ErrorHandlingOptions = {}): Problem {
  const down = error instanceof Problem ? undefined : unavailableDependency(error);
  if (down) {
    opts.outages?.down(down, causeOf(error), true);
    request.log.debug({ dependency: down }, 'request failed: dependency unavailable');
    return new Problem(commonProblems.UNAVAILABLE, `The ${down === 'database' ? 'database' : 'queue backend'} is unavailable; retry later`);
  }
  let problem = opts.toProblem ? opts.toProblem(error, request) : toProblem(error);
  if (problem.problemType === commonProblems.UNSUPPORTED_MEDIA_TYPE && !('accepted' in problem.extensions)) {
    // The route's own 415 type (e.g. ingestion's multipart-required) when it names one.
    const own = (request.routeOptions.config as { unsupportedMediaType?: ProblemType } | undefined)?.unsupportedMediaType;
    const consumes = (request.routeOptions.schema as { consumes?: readonly string[] } | undefined)?.consumes;
    problem = new Problem(own ?? problem.problemType, problem.detail, { ...problem.extensions, accepted: [...(consumes ?? ['application/json'])] }, problem.headers);
  }
  // A 503 we raise ourselves (load shedding, a dependency we know is down) is a refusal the
  // client is told to retry, not a failure: at three times capacity it happens thousands of times
  // a second, and a stack per refusal would cost more CPU than the letters (metrics count them).
  if (problem.statusCode >= 500 && !(error instanceof Problem && problem.statusCode === 503)) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: problem.problemType.code }, 'request rejected');
  return problem;
}

/**
 * Every error leaves as a problem (problem+json unless the scope sends its own shape); a dependency
 * down is a 503 with Retry-After. 404 and 405 are told apart with a router of our own that knows
 * every path registered in the scope, because Fastify answers 404 for a known path with a wrong
 * method. A plugin scope (e.g. /api/) may install its own, with its own `send`.
 */
export function installErrorHandling(app: FastifyInstance, opts: ErrorHandlingOptions = {}): void {
  const send = opts.send ?? sendProblem;
  const known = FindMyWay();
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (m === 'HEAD' || known.hasRoute(m as HTTPMethod, route.url)) continue;
      known.on(m as HTTPMethod, route.url, () => undefined);
    }
  });

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => send(reply, problemFor(error, request, opts)));

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = (['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const).filter((m) => known.find(m, path) !== null);
    if (allowed.length > 0) {
      return send(reply, new Problem(commonProblems.METHOD_NOT_ALLOWED, `${request.method} is not allowed here`, { allowed }, { allow: allowed.join(', ') }));
    }
    return send(reply, new Problem(commonProblems.NOT_FOUND, `No route ${request.method} ${path}`));
  });
}
