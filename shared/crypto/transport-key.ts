import { createPrivateKey, type KeyObject } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { createDevCertificate } from '../registry/dev-certificate.js';
import type { Keyring } from './keyring.js';

/**
 * The hub's own transport certificate: what a provider seals letters for when it sends them back
 * to the hub (moving delivered mail, docs/storage.md). RSA (the DPI CMS profile: RSAES-OAEP
 * key transport), the private key kept as PKCS#8 wrapped under the KEK like the signing keys.
 * The first one is created under an advisory lock, so processes starting together make one. It
 * is self-signed; an operator who needs a CA-issued certificate inserts it as a newer row.
 */
export interface TransportKey {
  id: string;
  certificateDer: Buffer;
  privateKey: KeyObject;
}

const context = (id: string) => `transport-key:${id}`;
const cache = new WeakMap<Kysely<Database>, Promise<TransportKey>>();

async function load(db: Kysely<Database>, keyring: Keyring): Promise<TransportKey> {
  const newest = (d: Kysely<Database>) =>
    d.selectFrom('hub_transport_keys').selectAll().where('retired_at', 'is', null).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
  let row = await newest(db);
  if (!row) {
    row = await db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtextextended('postbud.hub_transport_keys', 0))`.execute(trx);
      const found = await newest(trx);
      if (found) return found;
      const id = `transport-${new Date().toISOString().slice(0, 10)}-${crypto.randomUUID().slice(0, 8)}`;
      const cert = createDevCertificate({ commonName: 'postbud hub transport' });
      const pkcs8 = createPrivateKey(cert.keyPem).export({ format: 'der', type: 'pkcs8' });
      const { kekId, wrapped } = keyring.wrap(pkcs8, context(id));
      return trx.insertInto('hub_transport_keys').values({ id, certificate: cert.der, private_key: wrapped, kek_id: kekId }).returningAll().executeTakeFirstOrThrow();
    });
  }
  const privateKey = createPrivateKey({ key: keyring.unwrap(row.kek_id, row.private_key, context(row.id)), format: 'der', type: 'pkcs8' });
  return { id: row.id, certificateDer: row.certificate, privateKey };
}

/** The current transport key (made on first use), cached per database handle. */
export function hubTransportKey(db: Kysely<Database>, keyring: Keyring): Promise<TransportKey> {
  let p = cache.get(db);
  if (!p) {
    p = load(db, keyring);
    p.catch(() => cache.delete(db));
    cache.set(db, p);
  }
  return p;
}

export const certificatePem = (der: Buffer): string =>
  `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
