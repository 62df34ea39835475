import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import type { TrustedIssuer } from '../config/settings.js';

/**
 * The development token issuer: an ES256 key pair under DATA_DIR/issuer, created on first use,
 * whose tokens are shaped like Maskinporten (machine clients) and ID-porten (citizens) tokens.
 */
export const DEV_ISSUER = 'https://postbud.dev/dev-issuer';

export interface DevIssuerFiles {
  privateJwk: string;
  jwks: string;
}

export function devIssuerFiles(dataDir: string): DevIssuerFiles {
  const dir = path.resolve(dataDir, 'issuer');
  return { privateJwk: path.join(dir, 'private.jwk.json'), jwks: path.join(dir, 'jwks.json') };
}

/** Creates the key pair if missing; safe to call from several processes (first writer wins). */
export async function ensureDevIssuer(dataDir: string): Promise<TrustedIssuer> {
  const files = devIssuerFiles(dataDir);
  if (!existsSync(files.privateJwk)) {
    mkdirSync(path.dirname(files.privateJwk), { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = `dev-${Date.now().toString(36)}`;
    const priv = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
    const pub = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
    try {
      writeFileSync(files.privateJwk, JSON.stringify(priv), { mode: 0o600, flag: 'wx' });
      writeFileSync(files.jwks, JSON.stringify({ keys: [pub] }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      await waitFor(files.jwks);
    }
  }
  await waitFor(files.jwks);
  return { issuer: DEV_ISSUER, jwks: files.jwks };
}

async function waitFor(file: string): Promise<void> {
  for (let i = 0; i < 100 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Development tokens live as long as the services accept by default (AUTH_MAX_TOKEN_LIFETIME_S):
 * `postbud token` is cheap, so mint one per command rather than keep one for hours.
 */
export const DEV_TOKEN_TTL_S = 300;

export type TokenRequest =
  | { org: string; scope: string; audience: string; ttlSeconds?: number; clientId?: string }
  | { pid: string; acr: string; audience: string; ttlSeconds?: number };

export async function issueDevToken(dataDir: string, req: TokenRequest): Promise<string> {
  const files = devIssuerFiles(dataDir);
  await ensureDevIssuer(dataDir);
  const jwk = JSON.parse(readFileSync(files.privateJwk, 'utf8')) as JWK;
  const key = await importJWK(jwk, 'ES256');
  const claims =
    'org' in req
      ? {
          scope: req.scope,
          client_id: req.clientId ?? `dev-${req.org}`,
          consumer: { authority: 'iso6523-actorid-upis', ID: `0192:${req.org}` },
        }
      : { pid: req.pid, acr: req.acr, sub: req.pid };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, typ: 'at+jwt' })
    .setIssuer(DEV_ISSUER)
    .setAudience(req.audience)
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .setExpirationTime(`${req.ttlSeconds ?? DEV_TOKEN_TTL_S}s`)
    .sign(key);
}
