import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { installErrorHandling, problemHeaders, toProblem } from '../../../shared/errors/error-handler.js';
import { commonProblems, Problem } from '../../../shared/errors/problem.js';
import { ownValue } from '../../../shared/runtime/own-key.js';
import { ingestionProblems } from '../problems.js';
import { violationEntry } from './sbd.js';

/**
 * Errors on /api/ in next-move's documented shape (`timestamp, status, error, exception,
 * message, path`, plus `errors[]` for constraint violations), the cause being the same problem
 * type as everywhere else; `description` carries the problem's title and `code` its stable code.
 * Every other route keeps problem+json.
 */

/** The media type next-move's errors are sent in (Spring's default), not problem+json. */
export const NEXT_MOVE_ERROR_MEDIA_TYPE = 'application/json';

export const NextMoveError = Type.Object(
  {
    timestamp: Type.String(),
    status: Type.Integer(),
    error: Type.String(),
    exception: Type.String({ description: 'The next-move exception this corresponds to, else the postbud problem code' }),
    message: Type.String(),
    path: Type.String(),
    description: Type.Optional(Type.String()),
    code: Type.Optional(Type.String({ description: 'The postbud problem code (POSTBUD_...)' })),
    accepted: Type.Optional(Type.Array(Type.String(), { description: 'On a 415: the media types the operation takes' })),
    allowed: Type.Optional(Type.Array(Type.String(), { description: 'On a 405: the methods the path takes' })),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          codes: Type.Array(Type.String()),
          defaultMessage: Type.String(),
          objectName: Type.String(),
          field: Type.String(),
          rejectedValue: Type.Unknown(),
          bindingFailure: Type.Boolean(),
          code: Type.String(),
        }),
      ),
    ),
  },
  { title: 'NextMoveError', description: "next-move's error body" },
);

export const nextMoveErrors = (...extra: number[]) => {
  const out: Record<number, typeof NextMoveError> = { 400: NextMoveError, 401: NextMoveError, 403: NextMoveError };
  for (const code of extra) out[code] = NextMoveError;
  return out;
};

const EXCEPTIONS: Record<string, string> = {
  [ingestionProblems.NEXTMOVE_SERVICE_NOT_SUPPORTED.code]: 'no.difi.meldingsutveksling.exceptions.ServiceNotEnabledException',
  [ingestionProblems.NEXTMOVE_INVALID_SBD.code]: 'javax.validation.ConstraintViolationException',
  [commonProblems.VALIDATION.code]: 'javax.validation.ConstraintViolationException',
  [ingestionProblems.MESSAGE_NOT_FOUND.code]: 'no.difi.meldingsutveksling.exceptions.MessageNotFoundException',
  [ingestionProblems.NEXTMOVE_CONVERSATION_NOT_FOUND.code]: 'no.difi.meldingsutveksling.exceptions.ConversationNotFoundException',
  [ingestionProblems.NEXTMOVE_SUBSCRIPTION_NOT_FOUND.code]: 'no.difi.meldingsutveksling.exceptions.SubscriptionNotFoundException',
  [ingestionProblems.NEXTMOVE_ALREADY_SENT.code]: 'no.difi.meldingsutveksling.exceptions.MessageAlreadySentException',
  [ingestionProblems.NEXTMOVE_MESSAGE_ID_CONFLICT.code]: 'no.difi.meldingsutveksling.exceptions.DuplicateMessageException',
  [ingestionProblems.NEXTMOVE_NO_DOCUMENTS.code]: 'no.difi.meldingsutveksling.exceptions.MissingFileException',
  [ingestionProblems.NEXTMOVE_MAIN_DOCUMENT_MISSING.code]: 'no.difi.meldingsutveksling.exceptions.MissingFileException',
  [ingestionProblems.NEXTMOVE_RECEIVER_NOT_PERSON.code]: 'no.difi.meldingsutveksling.exceptions.ReceiverDoNotAcceptDpiException',
  [ingestionProblems.NEXTMOVE_UNKNOWN_PROCESS.code]: 'no.difi.meldingsutveksling.exceptions.UnknownProcessException',
  [ingestionProblems.NEXTMOVE_SENDER_MISMATCH.code]: 'no.difi.meldingsutveksling.exceptions.SenderNotAuthorizedException',
};

const fieldOf = (pointer: string, missing?: unknown) => {
  const parts = pointer.split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? `[${p}]` : p));
  if (typeof missing === 'string') parts.push(missing);
  return parts.join('.').replace(/\.\[/g, '[') || 'body';
};

function valueAt(body: unknown, pointer: string): unknown {
  let v: unknown = body;
  for (const p of pointer.split('/').filter(Boolean)) {
    if (v === null || typeof v !== 'object') return null;
    v = (v as Record<string, unknown>)[p];
  }
  if (v === undefined) return null;
  if (typeof v === 'string') return v.slice(0, 200);
  return typeof v === 'object' ? null : v;
}

interface SchemaError {
  instancePath: string;
  message?: string;
  keyword?: string;
  params?: unknown;
}

/** Schema failures as next-move constraint violations, one entry per failing field. */
export function violations(list: readonly SchemaError[], body: unknown, fallback = 'The request does not match the schema'): Problem {
  const seen = new Set<string>();
  const errors = list.slice(0, 40).map((v) => {
    const params = (v.params ?? {}) as Record<string, unknown>;
    const field = fieldOf(v.instancePath, params.missingProperty ?? params.additionalProperty ?? params.requiredProperties?.toString());
    const message = params.missingProperty || params.requiredProperties ? 'Must not be null' : params.additionalProperty ? 'Is not a known property' : (v.message ?? 'is not valid');
    const code = String(v.keyword ?? 'NotValid');
    return violationEntry(field, message, valueAt(body, v.instancePath), code);
  }).filter((e) => !seen.has(e.field) && seen.add(e.field)).slice(0, 20);
  const first = errors[0];
  return new Problem(commonProblems.VALIDATION, first ? `${first.field}: ${first.defaultMessage}` : fallback, { errors });
}

const fromValidation = (fe: FastifyError, body: unknown): Problem =>
  violations(fe.validation ?? [], fe.validationContext === 'body' ? body : undefined, fe.message);

export function nextMoveBody(problem: Problem, path: string, now = new Date()) {
  const body = problem.body(path);
  const errors = problem.extensions.errors as unknown[] | undefined;
  const hasViolations = Array.isArray(errors) && errors.every((e) => e !== null && typeof e === 'object' && 'field' in e);
  return {
    timestamp: now.toISOString(),
    status: problem.statusCode,
    error: ownValue(STATUS_CODES, String(problem.statusCode)) ?? 'Error',
    exception: ownValue(EXCEPTIONS, problem.problemType.code) ?? body.code,
    message: problem.detail ?? problem.problemType.title,
    path,
    description: problem.problemType.title,
    code: body.code,
    ...(hasViolations ? { errors } : {}),
    ...(Array.isArray(problem.extensions.accepted) ? { accepted: problem.extensions.accepted as string[] } : {}),
    ...(Array.isArray(problem.extensions.allowed) ? { allowed: problem.extensions.allowed as string[] } : {}),
  };
}

export function sendNextMoveError(reply: FastifyReply, problem: Problem): FastifyReply {
  const path = reply.request.url.split('?')[0] ?? '/';
  return problemHeaders(reply, problem).code(problem.statusCode).type(NEXT_MOVE_ERROR_MEDIA_TYPE).send(nextMoveBody(problem, path));
}

/**
 * The /api/ scope's error and not-found handlers (encapsulated: nothing outside /api/ changes):
 * the shared error handling (503 on an outage, 415 with `accepted`, 405 with `allowed`) with
 * next-move's validation shape, sent in next-move's error body. The router's own errors under
 * /api/ (a path segment too long) leave in the same shape.
 */
export function installNextMoveErrors(app: FastifyInstance, prefix: string): void {
  installErrorHandling(app, {
    outages: app.outages,
    send: sendNextMoveError,
    toProblem: (error, request) => (error.validation ? fromValidation(error, request.body) : toProblem(error)),
  });
  app.errorScopes.push({ prefix, send: sendNextMoveError });
  // Every /api/ operation documents its errors in this shape (shared/app/api-contract.ts reads it).
  app.addHook('onRoute', (route) => {
    route.schema ??= {};
    route.schema.errorShape = { mediaType: NEXT_MOVE_ERROR_MEDIA_TYPE, schema: NextMoveError };
  });
}
