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

/** The OpenAPI security requirement every guarded route declares. */
export const BEARER_SECURITY = [{ bearer: [] }];

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
  return async function clientGuard(this: FastifyInstance, request: FastifyRequest): Promise<void> {
    const p = await authenticate(this, request);
    if (p.kind !== 'client') throw new Problem(commonProblems.FORBIDDEN, 'This operation is for machine clients');
    if (!anyOf.some((s) => p.scopes.has(s))) {
      throw new Problem(commonProblems.FORBIDDEN_SCOPE, `Requires one of: ${anyOf.join(', ')}`, { required: anyOf });
    }
  };
}

/** A citizen; `minAcr` for operations that change anything. */
export function requireCitizen(minAcr?: Acr) {
  return async function citizenGuard(this: FastifyInstance, request: FastifyRequest): Promise<void> {
    const p = await authenticate(this, request);
    if (p.kind !== 'citizen') throw new Problem(commonProblems.FORBIDDEN, 'This operation is for citizens');
    if (minAcr && !acrAtLeast(p.acr, minAcr)) {
      throw new Problem(commonProblems.INSUFFICIENT_ACR, `Requires acr ${minAcr} or higher`, { required: minAcr });
    }
  };
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
