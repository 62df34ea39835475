import { readFileSync } from 'node:fs';
import { generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { DEV_ISSUER, devIssuerFiles } from '../../shared/auth/dev-issuer.js';

/** Signs arbitrary claims with this test's development issuer key, for tokens the CLI would never make. */
export async function signWithDevKey(dataDir: string, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const jwk = JSON.parse(readFileSync(devIssuerFiles(dataDir).privateJwk, 'utf8')) as JWK;
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, ...header }).sign(await importJWK(jwk, 'ES256'));
}

/** A token with the right issuer and kid, signed by a key the hub does not trust. */
export async function forgeToken(dataDir: string, claims: JWTPayload): Promise<string> {
  const jwk = JSON.parse(readFileSync(devIssuerFiles(dataDir).privateJwk, 'utf8')) as JWK;
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT({ iss: DEV_ISSUER, ...claims }).setProtectedHeader({ alg: 'ES256', kid: jwk.kid! }).sign(privateKey);
}

export const consumer = (org: string) => ({ authority: 'iso6523-actorid-upis', ID: `0192:${org}` });
