import type { Config } from '../../shared/config/config.js';
import { HubKeys } from '../../shared/crypto/hub-keys.js';
import { keyringFor } from '../../shared/crypto/keyring.js';
import { connectDb } from '../../shared/db/connect.js';
import { UsageError } from './token.js';

/**
 * `postbud rotate-hub-key [--now]`: a new ES256 signing key for manifests, receipts and tree
 * heads. It is published in the JWKS at once and signs from `signsFrom` (one JWKS cache lifetime
 * plus a minute later), when the old key is retired; old keys stay in the JWKS, so everything
 * signed before keeps verifying. `--now` (a compromised key) signs with the new key at once.
 */
export async function rotateHubKey(config: Config, out: (s: string) => void = (s) => process.stdout.write(s), argv: string[] = []): Promise<string> {
  if (argv.some((a) => a !== '--now')) throw new UsageError('usage: postbud rotate-hub-key [--now]');
  if (!config.DATABASE_URL) throw new UsageError('postbud rotate-hub-key: set DATABASE_URL to the hub database');
  const db = connectDb(config.DATABASE_URL, { poolSize: 2, applicationName: 'postbud-rotate-hub-key' });
  try {
    const hub = new HubKeys(db.kysely, keyringFor(config));
    const { kid, activatesAt } = await hub.rotate({ immediately: argv.includes('--now') });
    const published = (await hub.jwks()).keys.map((k) => k.kid);
    out(`${JSON.stringify({ signingKey: kid, signsFrom: activatesAt.toISOString(), published }, null, 2)}\n`);
    return kid;
  } finally {
    await db.close();
  }
}
