import type { Config } from '../config/config.js';
import type { Db } from '../db/connect.js';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { Database } from '../db/database.js';
import { HubKeys } from '../crypto/hub-keys.js';
import { keyringFor, type Keyring } from '../crypto/keyring.js';
import { PostgresBlobStore, type BlobStore } from './blob-store.js';

/** What sealing, delivering and signing need; one per database handle, made on first use. */
export interface StorageContext {
  db: Kysely<Database>;
  /** For hot-path queries run as named prepared statements (planned once per connection). */
  pool: pg.Pool;
  keyring: Keyring;
  hub: HubKeys;
  blobs: BlobStore;
}

const cache = new WeakMap<Db, StorageContext>();

export function storageContext(deps: { config: Config; db: Db }): StorageContext {
  let ctx = cache.get(deps.db);
  if (!ctx) {
    const keyring = keyringFor(deps.config);
    ctx = { db: deps.db.kysely, pool: deps.db.pool, keyring, hub: new HubKeys(deps.db.kysely, keyring), blobs: new PostgresBlobStore(deps.db.kysely) };
    cache.set(deps.db, ctx);
  }
  return ctx;
}
