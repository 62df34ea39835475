import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/config.js';
import { ConfigError, type KekSpec } from '../config/settings.js';

/**
 * Key-encryption keys. Data keys and the hub's private signing keys are stored wrapped under a
 * KEK with AES-256-GCM (the KEK id recorded beside them, the owner's id bound in as AAD so a
 * wrapped key cannot be moved to another row). The first KEK wraps; every listed KEK unwraps,
 * so rotation is: put the new key first, keep the old ones until nothing wrapped under them is
 * left (`postbud` never needs the old key for new data).
 */
export interface Keyring {
  readonly currentId: string;
  readonly ids: readonly string[];
  wrap(plain: Buffer, context: string): { kekId: string; wrapped: Buffer };
  unwrap(kekId: string, wrapped: Buffer, context: string): Buffer;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

const IV_LEN = 12;
const TAG_LEN = 16;

export function createKeyring(keks: readonly KekSpec[]): Keyring {
  if (keks.length === 0) throw new KeyringError('no key-encryption key');
  const byId = new Map(keks.map((k) => [k.id, k.key]));
  const current = keks[0]!;
  return {
    currentId: current.id,
    ids: keks.map((k) => k.id),
    wrap(plain, context) {
      const iv = randomBytes(IV_LEN);
      const c = createCipheriv('aes-256-gcm', current.key, iv);
      c.setAAD(Buffer.from(context));
      const body = Buffer.concat([c.update(plain), c.final()]);
      return { kekId: current.id, wrapped: Buffer.concat([iv, c.getAuthTag(), body]) };
    },
    unwrap(kekId, wrapped, context) {
      const key = byId.get(kekId);
      if (!key) throw new KeyringError(`key-encryption key ${kekId} is not configured`);
      if (wrapped.length < IV_LEN + TAG_LEN) throw new KeyringError('wrapped key is truncated');
      const d = createDecipheriv('aes-256-gcm', key, wrapped.subarray(0, IV_LEN));
      d.setAAD(Buffer.from(context));
      d.setAuthTag(wrapped.subarray(IV_LEN, IV_LEN + TAG_LEN));
      try {
        return Buffer.concat([d.update(wrapped.subarray(IV_LEN + TAG_LEN)), d.final()]);
      } catch {
        throw new KeyringError(`wrapped key does not open under ${kekId}`);
      }
    },
  };
}

/** DATA_DIR/keks.json: the development KEK, created on first use (first writer wins). */
export function devKekFile(dataDir: string): string {
  return path.resolve(dataDir, 'keks.json');
}

function loadDevKeks(dataDir: string): KekSpec[] {
  const file = devKekFile(dataDir);
  const read = (): KekSpec[] =>
    (JSON.parse(readFileSync(file, 'utf8')) as { keys: { id: string; key: string }[] }).keys.map((k) => ({ id: k.id, key: Buffer.from(k.key, 'base64') }));
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const spec = { id: `dev-${Date.now().toString(36)}`, key: randomBytes(32).toString('base64') };
  // Written aside and linked into place: a concurrent reader sees the whole file or none.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, JSON.stringify({ keys: [spec] }), { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
  return read();
}

const cache = new WeakMap<Config, Keyring>();

/** The keyring from KEKS, or (outside production) the development KEK under DATA_DIR. */
export function keyringFor(config: Config): Keyring {
  let ring = cache.get(config);
  if (!ring) {
    if (config.KEKS) ring = createKeyring(config.KEKS);
    else if (config.NODE_ENV === 'production') throw new ConfigError('KEKS', 'must be set in production');
    else ring = createKeyring(loadDevKeks(config.DATA_DIR));
    cache.set(config, ring);
  }
  return ring;
}
