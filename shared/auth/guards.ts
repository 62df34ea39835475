import type { FastifyInstance, FastifyRequest } from 'fastify';
import { commonProblems, Problem } from '../errors/problem.js';
import type { CitizenPrincipal, ClientPrincipal, Principal } from './principal.js';
import { acrAtLeast, type Acr, type Scope } from './scopes.js';
import { TokenError, type TokenVerifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyInstance {
    tokenVerifier: TokenVerifier;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * Kept for routes that still name it: the OpenAPI `security` of an operation is generated from
 * the guard it runs (see `guardOf` and shared/app/api-contract.ts), never from this constant.
 */
export const BEARER_SECURITY: { [scheme: string]: string[] }[] = [];

/** What a guard enforces, carried on the guard function so the API documents are derived from it. */
export type GuardInfo = { kind: 'client'; anyOf: readonly Scope[] } | { kind: 'citizen'; minAcr?: Acr | undefined };

const GUARD_INFO = Symbol.for('postbud.guard');

function withInfo<F extends object>(fn: F, info: GuardInfo): F {
  Object.defineProperty(fn, GUARD_INFO, { value: info });
  return fn;
}

/** The guard among a route's hooks (onRequest, preParsing, preValidation, preHandler), if any. */
export function guardOf(route: { [hook: string]: unknown }): GuardInfo | undefined {
  for (const hook of ['onRequest', 'preParsing', 'preValidation', 'preHandler']) {
    const fns = route[hook];
    for (const fn of Array.isArray(fns) ? fns : fns ? [fns] : []) {
      const info = (fn as { [GUARD_INFO]?: GuardInfo })[GUARD_INFO];
      if (info) return info;
    }
  }
  return undefined;
}

async function authenticate(app: FastifyInstance, request: FastifyRequest): Promise<Principal> {
  const header = request.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) {
    throw new Problem(commonProblems.UNAUTHENTICATED, 'Send Authorization: Bearer <access token>', {}, { 'www-authenticate': 'Bearer' });
  }
  try {
    const principal = await app.tokenVerifier.verify(match[1]!);
    request.principal = principal;
    return principal;
  } catch (err) {
    const expired = err instanceof TokenError && err.reason === 'expired';
    const detail = err instanceof TokenError ? err.message : 'token rejected';
    throw new Problem(expired ? commonProblems.TOKEN_EXPIRED : commonProblems.UNAUTHENTICATED, detail, {}, {
      'www-authenticate': `Bearer error="invalid_token"`,
    });
  }
}

/** A machine client holding at least one of `anyOf`. */
export function requireClient(...anyOf: Scope[]) {
  return withInfo(async function clientGuard(this: FastifyInstance, request: FastifyRequest): Promise<void> {
    const p = await authenticate(this, request);
    if (p.kind !== 'client') throw new Problem(commonProblems.FORBIDDEN, 'This operation is for machine clients');
    if (!anyOf.some((s) => p.scopes.has(s))) {
      throw new Problem(commonProblems.FORBIDDEN_SCOPE, `Requires one of: ${anyOf.join(', ')}`, { required: anyOf });
    }
  }, { kind: 'client', anyOf });
}

/** A citizen; `minAcr` for operations that change anything. */
export function requireCitizen(minAcr?: Acr) {
  return withInfo(async function citizenGuard(this: FastifyInstance, request: FastifyRequest): Promise<void> {
    const p = await authenticate(this, request);
    if (p.kind !== 'citizen') throw new Problem(commonProblems.FORBIDDEN, 'This operation is for citizens');
    if (minAcr && !acrAtLeast(p.acr, minAcr)) {
      throw new Problem(commonProblems.INSUFFICIENT_ACR, `Requires acr ${minAcr} or higher`, { required: minAcr });
    }
  }, { kind: 'citizen', minAcr });
}

export function clientOf(request: FastifyRequest): ClientPrincipal {
  const p = request.principal;
  if (p?.kind !== 'client') throw new Problem(commonProblems.UNAUTHENTICATED);
  return p;
}

export function citizenOf(request: FastifyRequest): CitizenPrincipal {
  const p = request.principal;
  if (p?.kind !== 'citizen') throw new Problem(commonProblems.UNAUTHENTICATED);
  return p;
}
