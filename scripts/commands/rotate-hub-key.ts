import type { Config } from '../../shared/config/config.js';
import { HubKeys } from '../../shared/crypto/hub-keys.js';
import { keyringFor } from '../../shared/crypto/keyring.js';
import { connectDb } from '../../shared/db/connect.js';
import { UsageError } from './token.js';

/**
 * `postbud rotate-hub-key`: a new ES256 signing key for manifests and receipts. The old keys are
 * retired but stay in the JWKS, so everything signed before keeps verifying; running services
 * switch to the new key within their cache period (a minute).
 */
export async function rotateHubKey(config: Config, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<string> {
  if (!config.DATABASE_URL) throw new UsageError('postbud rotate-hub-key: set DATABASE_URL to the hub database');
  const db = connectDb(config.DATABASE_URL, { poolSize: 2, applicationName: 'postbud-rotate-hub-key' });
  try {
    const hub = new HubKeys(db.kysely, keyringFor(config));
    const kid = await hub.rotate();
    const published = (await hub.jwks()).keys.map((k) => k.kid);
    out(`${JSON.stringify({ signingKey: kid, published }, null, 2)}\n`);
    return kid;
  } finally {
    await db.close();
  }
}
