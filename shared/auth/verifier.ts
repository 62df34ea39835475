import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { TrustedIssuer } from '../config/settings.js';
import { isValidOrgnr } from '../ids/orgnr.js';
import type { Principal } from './principal.js';

/** RFC 8725: never let the token choose its algorithm beyond this list. */
export const ALLOWED_ALGORITHMS = ['RS256', 'ES256'];

export class TokenError extends Error {
  constructor(
    readonly reason: 'missing' | 'malformed' | 'untrusted-issuer' | 'invalid' | 'expired' | 'no-subject' | 'issued-in-future' | 'lifetime-too-long',
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
}

const ORG_ID = /^0192:(\d{9})$/;

/**
 * The longest lifetime (`exp - iat`) accepted by default: Maskinporten's and ID-porten's access
 * tokens live 120 s unless a client asks for more; 300 s leaves room for that without letting a
 * stolen token of a misconfigured or compromised issuer work for hours (`AUTH_MAX_TOKEN_LIFETIME_S`).
 */
export const DEFAULT_MAX_TOKEN_LIFETIME_S = 300;
const VERIFIED_CACHE_MS = 60_000;
const VERIFIED_CACHE_SIZE = 10_000;

function keySetFor(jwks: string): JWTVerifyGetKey {
  if (/^https?:\/\//.test(jwks)) return createRemoteJWKSet(new URL(jwks), { cacheMaxAge: 10 * 60_000 });
  // The file is read again when a token names a key we lack, so a rotated key needs no restart.
  const load = () => createLocalJWKSet(JSON.parse(readFileSync(jwks, 'utf8')) as JSONWebKeySet);
  let set = load();
  return async (header, token) => {
    try {
      return await set(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      set = load();
      return set(header, token);
    }
  };
}

function issuerOf(token: string): string {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) throw new TokenError('malformed', 'not a compact JWS');
  try {
    const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as JWTPayload;
    if (typeof payload.iss !== 'string') throw new Error('no iss');
    return payload.iss;
  } catch {
    throw new TokenError('malformed', 'token payload is not JSON with an iss');
  }
}

export function principalFromClaims(payload: JWTPayload, issuer: string): Principal {
  const consumer = payload.consumer as { authority?: unknown; ID?: unknown } | undefined;
  if (consumer && typeof consumer.ID === 'string') {
    const m = ORG_ID.exec(consumer.ID);
    if (!m || consumer.authority !== 'iso6523-actorid-upis') {
      throw new TokenError('invalid', 'consumer must be {authority: "iso6523-actorid-upis", ID: "0192:<orgnr>"}');
    }
    if (!isValidOrgnr(m[1])) throw new TokenError('invalid', 'consumer.ID is not an organisation number: its check digit is wrong');
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    return {
      kind: 'client',
      org: m[1]!,
      scopes: new Set(scope.split(' ').filter(Boolean)),
      issuer,
      clientId: typeof payload.client_id === 'string' ? payload.client_id : undefined,
    };
  }
  if (typeof payload.pid === 'string' && /^\d{11}$/.test(payload.pid) && typeof payload.acr === 'string') {
    return { kind: 'citizen', pid: payload.pid, acr: payload.acr, issuer };
  }
  throw new TokenError('no-subject', 'token has neither a consumer org nor a pid with acr');
}

/**
 * `iat` is required (RFC 9068 access tokens always carry it), may not lie in the future beyond
 * the clock tolerance, and `exp - iat` may not exceed `maxLifetimeS`.
 */
export function checkTokenTimes(payload: JWTPayload, nowS: number, clockToleranceS: number, maxLifetimeS: number): void {
  const { iat, exp } = payload;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new TokenError('invalid', 'token has no iat');
  if (iat > nowS + clockToleranceS) throw new TokenError('issued-in-future', 'token is issued in the future (iat is ahead of our clock by more than the tolerance)');
  if (typeof exp === 'number' && exp - iat > maxLifetimeS) {
    throw new TokenError('lifetime-too-long', `token lifetime (exp - iat) is ${Math.round(exp - iat)} s; at most ${maxLifetimeS} s is accepted`);
  }
}

/**
 * Verifies bearer JWTs from the configured issuers: signature with that issuer's keys only,
 * the algorithm allowlist, `iss`, `aud`, `exp` and `iat` (required), `nbf`, an `iat` not in the
 * future, a lifetime of at most `maxLifetimeS`, and a machine client's orgnr check digit.
 */
export function createTokenVerifier(opts: { issuers: TrustedIssuer[]; audience: string; clockToleranceS: number; maxLifetimeS?: number }): TokenVerifier {
  const maxLifetimeS = opts.maxLifetimeS ?? DEFAULT_MAX_TOKEN_LIFETIME_S;
  const keySets = new Map(opts.issuers.map((i) => [i.issuer, keySetFor(i.jwks)]));
  // A client sends the same token with every request until it expires: a token that verified is
  // remembered (by its exact bytes) until its exp, at most VERIFIED_CACHE_MS, so a signature is
  // checked about once a minute per token instead of once per request. Failures are not cached.
  const verified = new Map<string, { principal: Principal; until: number }>();
  return {
    async verify(token: string) {
      const now = Date.now();
      const hit = verified.get(token);
      if (hit) {
        if (hit.until > now) return hit.principal;
        verified.delete(token);
      }
      const { principal, expiresAtMs } = await verifyUncached(token);
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, { principal, until: Math.min(now + VERIFIED_CACHE_MS, expiresAtMs) });
      return principal;
    },
  };

  async function verifyUncached(token: string): Promise<{ principal: Principal; expiresAtMs: number }> {
    const iss = issuerOf(token);
    const keys = keySets.get(iss);
    if (!keys) throw new TokenError('untrusted-issuer', 'issuer is not trusted');
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: iss,
        audience: opts.audience,
        algorithms: ALLOWED_ALGORITHMS,
        clockTolerance: opts.clockToleranceS,
        requiredClaims: ['exp', 'iss', 'aud'], // iat: checkTokenTimes, after exp, so an expired token is told so
      });
      checkTokenTimes(payload, Math.floor(Date.now() / 1000), opts.clockToleranceS, maxLifetimeS);
      return { principal: principalFromClaims(payload, iss), expiresAtMs: (payload.exp ?? 0) * 1000 };
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof errors.JWTExpired) throw new TokenError('expired', 'token has expired');
      throw new TokenError('invalid', err instanceof Error ? err.message : 'token rejected');
    }
  }
}
