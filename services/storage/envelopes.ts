import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { envelopeHeader, recipientCertificate, wrapForRecipient, CertificateError, type RecipientCertificate } from '../../shared/crypto/cms.js';
import { byteaColumn } from '../../shared/db/bytea-column.js';
import { dataKeyContext, PackageGoneError } from '../../shared/storage/packages.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { Problem } from '../../shared/errors/problem.js';
import { mapLimit } from '../../shared/runtime/map-limit.js';
import { storageProblems } from './problems.js';

/**
 * The addressed form of a delivery: the CMS header for the recipient's current certificate and
 * the fingerprint of header + ciphertext. Made once per (delivery, certificate) and stored, so
 * the listing's fingerprint, the download's ETag and the bytes always agree; a new certificate
 * (mailbox switch, provider key rotation) makes a new header, never a new encryption.
 */
export interface Envelope {
  header: Buffer;
  fingerprint: Buffer;
  /** Content-Length of the download. */
  size: number;
}

export interface EnvelopeTarget {
  id: string;
  packageId: string;
  providerOrgnr: string;
  ciphertextSize: number;
  chunks: number;
  envelopeHeader: Buffer | null;
  envelopeCertSha256: Buffer | null;
  fingerprint: Buffer | null;
  /** The certificate to encrypt for: the mailbox's own, else the provider's. */
  certificateDer: Buffer | null;
}

/** One target's envelope, or why it has none (a Problem for the recipient's certificate, else the fault). */
export type EnvelopeOutcome = { envelope: Envelope } | { error: unknown };

export async function ensureEnvelope(ctx: StorageContext, d: EnvelopeTarget, now = new Date()): Promise<Envelope> {
  const [outcome] = await ensureEnvelopes(ctx, [d], now);
  if ('error' in outcome!) throw outcome.error;
  return outcome!.envelope;
}

/** Certificates parsed and checked once per call, however many targets share one (a provider's own certificate, usually). */
function certificates(now: Date) {
  const seen = new Map<string, { cert: RecipientCertificate } | { error: unknown }>();
  return (der: Buffer, sha256: Buffer) => {
    const key = sha256.toString('hex');
    let c = seen.get(key);
    if (!c) {
      try {
        c = { cert: recipientCertificate(der, now) };
      } catch (err) {
        c = { error: err instanceof CertificateError ? new Problem(storageProblems.CERTIFICATE_UNUSABLE, `The registered certificate cannot be used: ${err.message}`) : err };
      }
      seen.set(key, c);
    }
    return c;
  };
}

/** What each target needs: nothing (its stored envelope is for its current certificate), a new one for `cert`, or it cannot have one. */
export type EnvelopeNeed = { envelope: Envelope } | { cert: RecipientCertificate } | { error: unknown };

/** Sorts targets by what they need, without I/O; each distinct certificate is parsed and checked once. */
export function envelopeNeeds(targets: readonly EnvelopeTarget[], now = new Date()): EnvelopeNeed[] {
  const certFor = certificates(now);
  return targets.map((d): EnvelopeNeed => {
    if (!d.certificateDer) return { error: new Problem(storageProblems.CERTIFICATE_UNUSABLE, 'No encryption certificate is registered for this recipient') };
    const certSha = createHash('sha256').update(d.certificateDer).digest();
    if (d.envelopeHeader && d.fingerprint && d.envelopeCertSha256?.equals(certSha)) {
      return { envelope: { header: d.envelopeHeader, fingerprint: d.fingerprint, size: d.envelopeHeader.length + d.ciphertextSize } };
    }
    return certFor(d.certificateDer, certSha);
  });
}

/** A package's key material. */
export interface PackageKey {
  status: string;
  kekId: string | null;
  wrappedKey: Buffer | null;
  iv: Buffer | null;
}

/** A new CMS header for a certificate, not stored yet. */
export interface MadeHeader {
  header: Buffer;
  certSha256: Buffer;
}

/** A new envelope, not stored yet. */
export interface MadeEnvelope extends Envelope, MadeHeader {}

/** The header for `cert`: the data key unwrapped, wrapped again for the recipient, zeroed. No I/O. */
export function makeHeader(ctx: StorageContext, d: EnvelopeTarget, cert: RecipientCertificate, key: PackageKey): MadeHeader {
  if (key.status !== 'SEALED' || !key.wrappedKey || !key.kekId || !key.iv) throw new PackageGoneError(`package ${d.packageId} is not available`);
  const dataKey = ctx.keyring.unwrap(key.kekId, key.wrappedKey, dataKeyContext(d.packageId));
  try {
    return { header: envelopeHeader({ cert, encryptedKey: wrapForRecipient(cert, dataKey), iv: key.iv, ciphertextLength: d.ciphertextSize }), certSha256: cert.sha256 };
  } finally {
    dataKey.fill(0);
  }
}

/** makeHeader, and the fingerprint over the header and `ciphertext` (all of it, in order). No I/O. */
export function makeEnvelope(ctx: StorageContext, d: EnvelopeTarget, cert: RecipientCertificate, key: PackageKey, ciphertext: Iterable<Buffer>): MadeEnvelope {
  const { header, certSha256 } = makeHeader(ctx, d, cert, key);
  const hash = createHash('sha256').update(header);
  for (const piece of ciphertext) hash.update(piece);
  return { header, fingerprint: hash.digest(), size: header.length + d.ciphertextSize, certSha256 };
}

/**
 * The envelopes of many deliveries, in their order, with two statements for all that need a new
 * one: one read of their packages' wrapped keys, IVs and first ciphertext chunks, one update
 * storing the headers and fingerprints (rows locked in id order). A target whose stored
 * envelope is for its current certificate needs no statement at all. Each target's failure is
 * its own (no certificate, an unusable one, a purged package, a missing chunk); a failed
 * statement fails those that needed it. (The listing makes the envelopes of small packages
 * inside its own transaction, leaseDeliveries; this is for the download and for larger packages.)
 */
export async function ensureEnvelopes(ctx: StorageContext, targets: readonly EnvelopeTarget[], now = new Date()): Promise<EnvelopeOutcome[]> {
  const out: EnvelopeOutcome[] = new Array(targets.length);
  const todo: { i: number; d: EnvelopeTarget; cert: RecipientCertificate }[] = [];
  envelopeNeeds(targets, now).forEach((need, i) => {
    if ('cert' in need) todo.push({ i, d: targets[i]!, cert: need.cert });
    else out[i] = need;
  });
  if (todo.length === 0) return out;

  let packages: Map<string, PackageKey & { firstChunk: Buffer | null }>;
  try {
    const { rows } = await sql<PackageKey & { id: string; firstChunk: Buffer | null }>`
      select p.id, p.status, p.kek_id as "kekId", p.wrapped_key as "wrappedKey", p.iv,
             (select c.data from package_chunks c where c.package_id = p.id and c.seq = 0) as "firstChunk"
        from packages p where p.id = any(${sql.val(todo.map((t) => t.d.packageId))}::uuid[])`.execute(ctx.db);
    packages = new Map(rows.map((r) => [r.id, r]));
  } catch (err) {
    for (const t of todo) out[t.i] = { error: err };
    return out;
  }

  const made: { i: number; d: EnvelopeTarget; envelope: MadeEnvelope }[] = [];
  await mapLimit(todo, 4, async ({ i, d, cert }) => {
    try {
      const key = packages.get(d.packageId) ?? { status: 'GONE', kekId: null, wrappedKey: null, iv: null, firstChunk: null };
      // The first chunk came with the key; another blob store (or a missing chunk) reads them all.
      const pieces: Buffer[] = key.firstChunk ? [key.firstChunk] : [];
      if (key.status === 'SEALED' && (!key.firstChunk || d.chunks > 1)) for await (const piece of ctx.blobs.read(d.packageId, d.chunks, key.firstChunk ? 1 : 0)) pieces.push(piece);
      made.push({ i, d, envelope: makeEnvelope(ctx, d, cert, key, pieces) });
    } catch (err) {
      out[i] = { error: err };
    }
  });
  if (made.length === 0) return out;

  // First writer wins: a concurrent pull that made another header (OAEP is randomised) keeps its own.
  let stored: Set<string>;
  try {
    const headers = byteaColumn(made.map((m) => m.envelope.header));
    const certs = byteaColumn(made.map((m) => m.envelope.certSha256));
    const prints = byteaColumn(made.map((m) => m.envelope.fingerprint));
    const { rows } = await sql<{ id: string }>`
      with x as (
        select * from unnest(${sql.val(made.map((m) => m.d.id))}::uuid[], ${sql.val(made.map((m) => m.d.providerOrgnr))}::text[],
                             ${headers.offsets}, ${headers.lengths}, ${certs.offsets}, ${certs.lengths}, ${prints.offsets}, ${prints.lengths})
          as x(id, provider_orgnr, h_off, h_len, c_off, c_len, f_off, f_len)),
      locked as (
        select d.id from deliveries d join x on x.id = d.id and x.provider_orgnr = d.provider_orgnr order by d.id for update of d)
      update deliveries d set envelope_header = ${headers.element('h')}, envelope_cert_sha256 = ${certs.element('c')}, fingerprint = ${prints.element('f')}
        from x
       where d.id = x.id and d.provider_orgnr = x.provider_orgnr and d.id in (select id from locked)
         and (d.envelope_cert_sha256 is null or d.envelope_cert_sha256 <> ${certs.element('c')})
      returning d.id`.execute(ctx.db);
    stored = new Set(rows.map((r) => r.id));
  } catch (err) {
    for (const m of made) out[m.i] = { error: err };
    return out;
  }
  const lost = made.filter((m) => !stored.has(m.d.id));
  for (const m of made) if (stored.has(m.d.id)) out[m.i] = { envelope: { header: m.envelope.header, fingerprint: m.envelope.fingerprint, size: m.envelope.size } };
  if (lost.length === 0) return out;

  // Lost the race (or re-addressed meanwhile): serve the stored envelope if it is for the same certificate.
  try {
    const current = await ctx.db
      .selectFrom('deliveries')
      .select(['id', 'envelope_header', 'fingerprint', 'envelope_cert_sha256'])
      .where('id', 'in', lost.map((m) => m.d.id))
      .execute();
    const byId = new Map(current.map((c) => [c.id, c]));
    for (const m of lost) {
      const c = byId.get(m.d.id);
      out[m.i] =
        c?.envelope_header && c.fingerprint && c.envelope_cert_sha256?.equals(m.envelope.certSha256)
          ? { envelope: { header: c.envelope_header, fingerprint: c.fingerprint, size: c.envelope_header.length + m.d.ciphertextSize } }
          : { error: new Problem(storageProblems.DELIVERY_NOT_FOUND, 'The delivery was re-addressed while it was being prepared') };
    }
  } catch (err) {
    for (const m of lost) out[m.i] = { error: err };
  }
  return out;
}
