import { createPrivateKey, generateKeyPairSync, randomBytes, sign as signNative, type KeyObject } from 'node:crypto';
import { exportJWK, type JWK } from 'jose';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { Keyring } from './keyring.js';

/**
 * The hub's own signing keys (ES256: the hub signs a manifest and several receipts per letter,
 * so RSA's ~1 ms per signature would dominate). Kept in `hub_keys` so every service process
 * signs with the same key: the private key as PKCS#8 wrapped under the KEK. The newest
 * unretired key signs; retired keys stay in the JWKS so old signatures keep verifying.
 */
export const HUB_ALG = 'ES256';

export interface SigningKey {
  kid: string;
  key: KeyObject;
}

export interface PublicJwks {
  keys: JWK[];
}

const CACHE_MS = 60_000;

/** How long verifiers may cache the JWKS (`Cache-Control: max-age` of /.well-known/jwks.json). */
export const JWKS_MAX_AGE_SECONDS = 300;

/**
 * A rotated key is published this long before it signs: one JWKS cache lifetime plus a minute
 * of clock skew, so a verifier holding a cached JWKS never meets a signature by a key it has not
 * seen (docs/evidence.md).
 */
export const KEY_PUBLISH_LEAD_MS = JWKS_MAX_AGE_SECONDS * 1000 + 60_000;
const context = (kid: string) => `hub-key:${kid}`;

export class HubKeys {
  private current: { key: SigningKey; until: number; stale: number } | undefined;
  private pending: Promise<SigningKey> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly keyring: Keyring,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key that signs now; creates the first key when there is none. */
  async signingKey(): Promise<SigningKey> {
    const now = this.now();
    if (this.current && this.current.until > now) return this.current.key;
    this.pending ??= this.loadCurrent().finally(() => {
      this.pending = undefined;
    });
    // Just expired: keep signing with the known key while it is reloaded, so a caller holding a
    // pooled connection (a transaction) never waits for another one (a saturated pool would
    // deadlock). Only the first load, or one after a long pause, waits.
    if (this.current && this.current.stale > now) {
      this.pending.catch(() => undefined);
      return this.current.key;
    }
    return this.pending;
  }

  private async loadCurrent(): Promise<SigningKey> {
    const at = new Date(this.now());
    let row = await this.active(this.db, at);
    if (!row) {
      row = await this.db.transaction().execute(async (trx) => {
        // One creator across processes; the others find its key (activated before they got the
        // lock, so the time is read again after it).
        await sql`select pg_advisory_xact_lock(hashtextextended('postbud.hub_keys', 0))`.execute(trx);
        const locked = new Date(this.now());
        return (await this.active(trx, locked)) ?? (await this.insertKey(trx, locked));
      });
    }
    const key: SigningKey = {
      kid: row.kid,
      key: createPrivateKey({ key: this.keyring.unwrap(row.kek_id, row.private_key, context(row.kid)), format: 'der', type: 'pkcs8' }),
    };
    // A key published but not yet signing takes over exactly at its activation, not up to a
    // cache period later (and never earlier).
    const next = await this.db.selectFrom('hub_keys').select('activates_at').where('activates_at', '>', at).orderBy('activates_at').limit(1).executeTakeFirst();
    const until = Math.min(this.now() + CACHE_MS, next ? next.activates_at.getTime() : Infinity);
    this.current = { key, until, stale: Math.min(until + CACHE_MS, next ? next.activates_at.getTime() : Infinity) };
    return key;
  }

  /** The key that signs at `at`: the latest one activated by then. */
  private active(db: Kysely<Database>, at: Date) {
    return db
      .selectFrom('hub_keys')
      .select(['kid', 'kek_id', 'private_key'])
      .where('activates_at', '<=', at)
      .orderBy('activates_at', 'desc')
      .orderBy('created_at', 'desc')
      .orderBy('kid', 'desc')
      .limit(1)
      .executeTakeFirst();
  }

  private async insertKey(db: Kysely<Database>, activatesAt: Date) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const kid = `hub-${new Date(this.now()).toISOString().slice(0, 10)}-${randomBytes(4).toString('hex')}`;
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const { kekId, wrapped } = this.keyring.wrap(pkcs8, context(kid));
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: HUB_ALG, use: 'sig' };
    await db
      .insertInto('hub_keys')
      .values({ kid, alg: HUB_ALG, public_jwk: JSON.stringify(jwk), private_key: wrapped, kek_id: kekId, created_at: new Date(this.now()), activates_at: activatesAt })
      .execute();
    return { kid, kek_id: kekId, private_key: wrapped };
  }

  /**
   * Adds a new signing key, published at once and signing from `KEY_PUBLISH_LEAD_MS` later;
   * until then the current key goes on signing, and then it is retired. Retired public keys stay
   * published. `immediately` (a compromised key) signs with the new key at once: verifiers
   * with a cached JWKS must then refetch it on an unknown `kid`.
   */
  async rotate(opts: { immediately?: boolean } = {}): Promise<{ kid: string; activatesAt: Date }> {
    const activatesAt = new Date(this.now() + (opts.immediately ? 0 : KEY_PUBLISH_LEAD_MS));
    const row = await this.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtextextended('postbud.hub_keys', 0))`.execute(trx);
      await trx.updateTable('hub_keys').set({ retired_at: activatesAt }).where('retired_at', 'is', null).execute();
      return this.insertKey(trx, activatesAt);
    });
    this.current = undefined;
    return { kid: row.kid, activatesAt };
  }

  /** Every public key: the next one (published, not yet signing), current and retired, newest first. */
  async jwks(): Promise<PublicJwks> {
    await this.signingKey();
    const rows = await this.db.selectFrom('hub_keys').select('public_jwk').orderBy('created_at', 'desc').orderBy('kid', 'desc').execute();
    return { keys: rows.map((r) => r.public_jwk as JWK) };
  }

  /**
   * A compact JWS over `payload` with the current key; `detached` leaves the payload out (RFC 7515 F).
   * Signed with node:crypto directly (synchronous, on the cached KeyObject): the same JWS jose's
   * CompactSign makes, without WebCrypto's per-call key normalisation and async job.
   */
  async sign(payload: Uint8Array, opts: { typ?: string; cty?: string; detached?: boolean } = {}): Promise<string> {
    const { kid, key } = await this.signingKey();
    const header = Buffer.from(JSON.stringify({ alg: HUB_ALG, kid, ...(opts.typ ? { typ: opts.typ } : {}), ...(opts.cty ? { cty: opts.cty } : {}) })).toString('base64url');
    const body = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64url');
    const signature = signNative('sha256', Buffer.from(`${header}.${body}`, 'ascii'), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    return opts.detached ? `${header}..${signature}` : `${header}.${body}.${signature}`;
  }
}
