import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { sql, type Kysely } from 'kysely';
import type { Test } from 'tap';
import type { ManifestInput } from '../../../shared/crypto/asice.js';
import type { Database } from '../../../shared/db/database.js';
import type { Config } from '../../../shared/config/config.js';
import type { Db } from '../../../shared/db/connect.js';
import type { Entry } from 'yauzl';

const run = promisify(execFile);

export interface ProviderCert {
  certDer: Buffer;
  certPem: string;
  keyPem: string;
}

/** An RSA-2048 encryption certificate (keyEncipherment) like a mailbox provider's. */
export function providerCert(cn: string, opts: { notAfter?: Date; notBefore?: Date; serial?: string } = {}): ProviderCert {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = opts.serial ?? `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = opts.notBefore ?? new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = opts.notAfter ?? new Date(Date.now() + 365 * 86_400_000);
  const name = [
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: `${cn} AS` },
    { name: 'countryName', value: 'NO' },
  ];
  cert.setSubject(name);
  cert.setIssuer([{ name: 'commonName', value: 'Test CA for postbud' }, { name: 'countryName', value: 'NO' }]);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', keyEncipherment: true, dataEncipherment: true, critical: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const certDer = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { certDer, certPem, keyPem };
}

/** `openssl cms -decrypt` on `cms`, returning what it writes. */
export async function opensslDecrypt(t: Test, cms: Buffer, cert: ProviderCert): Promise<Buffer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postbud-cms-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'in.der'), cms);
  writeFileSync(path.join(dir, 'cert.pem'), cert.certPem);
  writeFileSync(path.join(dir, 'key.pem'), cert.keyPem, { mode: 0o600 });
  const out = path.join(dir, 'out.zip');
  await run('/usr/bin/openssl', ['cms', '-decrypt', '-inform', 'DER', '-in', path.join(dir, 'in.der'), '-recip', path.join(dir, 'cert.pem'), '-inkey', path.join(dir, 'key.pem'), '-binary', '-out', out]);
  const { readFileSync } = await import('node:fs');
  return readFileSync(out);
}

/** `openssl cms -cmsout -print` of a DER structure (to look at its fields). */
export async function opensslPrint(t: Test, cms: Buffer): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postbud-cms-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'in.der'), cms);
  const { stdout } = await run('/usr/bin/openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', path.join(dir, 'in.der')], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function insertProvider(db: Kysely<Database>, p: { orgnr: string; name?: string; kind?: 'digital' | 'print'; certDer: Buffer; status?: string }): Promise<void> {
  await sql`insert into providers (orgnr, name, kind, certificate, status)
    values (${p.orgnr}, ${p.name ?? `Provider ${p.orgnr}`}, ${p.kind ?? 'digital'}, ${p.certDer}, ${p.status ?? 'active'})`.execute(db);
}

export function manifestInput(over: Partial<ManifestInput> = {}): ManifestInput {
  return {
    messageId: crypto.randomUUID(),
    sender: { orgnr: '974760673', name: 'Brønnøysundregistrene' },
    recipient: { personId: '01017012345' },
    title: 'Vedtak om tilskudd',
    language: 'nb',
    securityLevel: 4,
    availableAt: new Date().toISOString(),
    openReceipt: true,
    ...over,
  };
}

/** Deterministic pseudo-random document bytes, streamed in 64 KB pieces. */
export function docStream(size: number, seed = 1): Readable {
  let sent = 0;
  let x = seed;
  return new Readable({
    read() {
      if (sent >= size) return this.push(null);
      const n = Math.min(65536, size - sent);
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        b[i] = x >>> 16;
      }
      sent += n;
      this.push(b);
    },
  });
}

export async function collect(source: AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of source) parts.push(Buffer.from(p));
  return Buffer.concat(parts);
}

export const DIGIPOST = '984661185';
export const EBOKS = '922020175';
export const PRINTER = '986105174';
export const SENDER = '974760673';

export interface SeedDelivery {
  route?: 'DIGITAL' | 'PRINT';
  providerOrgnr?: string;
  mailboxAddress?: string;
  personId?: string;
  securityLevel?: 3 | 4;
  availableAt?: Date;
  documents?: { name: string; mime: string; bytes: Buffer }[];
}

export const PRINT_INSTRUCTIONS = {
  recipient: { name: 'Ola Nordmann', addressLines: ['Storgata 1'], postalCode: '0155', city: 'Oslo' },
  returnAddress: { name: 'Brønnøysundregistrene', addressLines: ['Postboks 900'], postalCode: '8910', city: 'Brønnøysund' },
  color: 'BW' as const,
  class: 'B' as const,
  returnHandling: 'RETURN' as const,
};

/** Seals a package and creates its delivery the way the intake will: through the shared functions. */
export async function seedDelivery(deps: { config: Config; db: Db }, opts: SeedDelivery = {}) {
  const { storageContext } = await import('../../../shared/storage/context.js');
  const { sealPackage } = await import('../../../shared/storage/packages.js');
  const { createDelivery } = await import('../../../shared/storage/deliveries.js');
  const ctx = storageContext(deps);
  const route = opts.route ?? 'DIGITAL';
  const providerOrgnr = opts.providerOrgnr ?? (route === 'PRINT' ? PRINTER : DIGIPOST);
  const mailboxAddress = route === 'DIGITAL' ? (opts.mailboxAddress ?? `ola#${randomBytes(3).toString('hex')}`) : null;
  const personId = opts.personId ?? '01017012345';
  const documents = opts.documents ?? [
    { name: 'vedtak.pdf', mime: 'application/pdf', bytes: Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(20_000)]) },
    { name: 'vedlegg.txt', mime: 'text/plain', bytes: Buffer.from('Vedlegg 1\n') },
  ];
  const manifest = manifestInput({
    recipient: { personId },
    securityLevel: opts.securityLevel ?? 4,
    availableAt: (opts.availableAt ?? new Date()).toISOString(),
  });
  const sealed = await sealPackage(ctx, {
    manifest,
    documents: documents.map((d) => ({ name: d.name, mime: d.mime, stream: Readable.from([d.bytes]) })),
  });
  const delivery = await deps.db.kysely.transaction().execute((trx) =>
    createDelivery(trx, ctx, {
      messageId: manifest.messageId,
      senderOrgnr: SENDER,
      personId,
      route,
      providerOrgnr,
      mailboxAddress,
      title: manifest.title,
      securityLevel: manifest.securityLevel,
      availableAt: new Date(manifest.availableAt),
      print: route === 'PRINT' ? PRINT_INSTRUCTIONS : null,
      sealed,
    }),
  );
  return { ...delivery, messageId: manifest.messageId, sealed, documents, personId, mailboxAddress, ctx };
}

export interface ZipEntryData {
  name: string;
  compressionMethod: number;
  data: Buffer;
}

/** Every entry of a ZIP, in order, with its bytes (yauzl checks CRCs and sizes). */
export async function unzip(zip: Buffer): Promise<ZipEntryData[]> {
  const yauzl = (await import('yauzl')).default;
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, file) => {
      if (err || !file) return reject(err ?? new Error('no zip'));
      const out: ZipEntryData[] = [];
      file.on('error', reject);
      file.on('end', () => resolve(out));
      file.on('entry', (entry: Entry) => {
        file.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error('no stream'));
          collect(stream as AsyncIterable<Buffer>).then((data) => {
            out.push({ name: entry.fileName, compressionMethod: entry.compressionMethod, data });
            file.readEntry();
          }, reject);
        });
      });
      file.readEntry();
    });
  });
}
