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

/**
 * The envelopes of many deliveries (a listing's page), in their order, with two statements for
 * all that need a new one: one read of their packages' wrapped keys, IVs and first ciphertext
 * chunks, one update storing the headers and fingerprints (rows locked in id order). A target
 * whose stored envelope is for its current certificate needs no statement at all. Each
 * target's failure is its own (no certificate, an unusable one, a purged package, a missing
 * chunk); a failed statement fails those that needed it.
 */
export async function ensureEnvelopes(ctx: StorageContext, targets: readonly EnvelopeTarget[], now = new Date()): Promise<EnvelopeOutcome[]> {
  const out: EnvelopeOutcome[] = new Array(targets.length);
  const certFor = certificates(now);
  const todo: { i: number; d: EnvelopeTarget; cert: RecipientCertificate }[] = [];
  targets.forEach((d, i) => {
    if (!d.certificateDer) {
      out[i] = { error: new Problem(storageProblems.CERTIFICATE_UNUSABLE, 'No encryption certificate is registered for this recipient') };
      return;
    }
    const certSha = createHash('sha256').update(d.certificateDer).digest();
    if (d.envelopeHeader && d.fingerprint && d.envelopeCertSha256?.equals(certSha)) {
      out[i] = { envelope: { header: d.envelopeHeader, fingerprint: d.fingerprint, size: d.envelopeHeader.length + d.ciphertextSize } };
      return;
    }
    const c = certFor(d.certificateDer, certSha);
    if ('error' in c) out[i] = { error: c.error };
    else todo.push({ i, d, cert: c.cert });
  });
  if (todo.length === 0) return out;
  const failAll = (err: unknown) => {
    for (const t of todo) out[t.i] ??= { error: err };
    return out;
  };

  let packages: Map<string, { status: string; kek_id: string; wrapped_key: Buffer | null; iv: Buffer; first_chunk: Buffer | null }>;
  try {
    const { rows } = await sql<{ id: string; status: string; kek_id: string; wrapped_key: Buffer | null; iv: Buffer; first_chunk: Buffer | null }>`
      select p.id, p.status, p.kek_id, p.wrapped_key, p.iv,
             (select c.data from package_chunks c where c.package_id = p.id and c.seq = 0) as first_chunk
        from packages p where p.id = any(${sql.val(todo.map((t) => t.d.packageId))}::uuid[])`.execute(ctx.db);
    packages = new Map(rows.map((r) => [r.id, r]));
  } catch (err) {
    return failAll(err);
  }

  // Header (the data key unwrapped, wrapped again for the recipient, zeroed) and fingerprint.
  const made: { i: number; d: EnvelopeTarget; certSha: Buffer; header: Buffer; fingerprint: Buffer }[] = [];
  await mapLimit(todo, 4, async ({ i, d, cert }) => {
    try {
      const p = packages.get(d.packageId);
      if (!p || p.status !== 'SEALED' || !p.wrapped_key) throw new PackageGoneError(`package ${d.packageId} is not available`);
      const dataKey = ctx.keyring.unwrap(p.kek_id, p.wrapped_key, dataKeyContext(d.packageId));
      let header: Buffer;
      try {
        header = envelopeHeader({ cert, encryptedKey: wrapForRecipient(cert, dataKey), iv: p.iv, ciphertextLength: d.ciphertextSize });
      } finally {
        dataKey.fill(0);
      }
      const hash = createHash('sha256').update(header);
      // The first chunk came with the key; another blob store (or a missing chunk) reads them all.
      if (p.first_chunk) hash.update(p.first_chunk);
      if (!p.first_chunk || d.chunks > 1) for await (const piece of ctx.blobs.read(d.packageId, d.chunks, p.first_chunk ? 1 : 0)) hash.update(piece);
      made.push({ i, d, certSha: cert.sha256, header, fingerprint: hash.digest() });
    } catch (err) {
      out[i] = { error: err };
    }
  });
  if (made.length === 0) return out;

  // First writer wins: a concurrent pull that made another header (OAEP is randomised) keeps its own.
  let stored: Set<string>;
  try {
    const headers = byteaColumn(made.map((m) => m.header));
    const certs = byteaColumn(made.map((m) => m.certSha));
    const prints = byteaColumn(made.map((m) => m.fingerprint));
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
  for (const m of made) if (stored.has(m.d.id)) out[m.i] = { envelope: { header: m.header, fingerprint: m.fingerprint, size: m.header.length + m.d.ciphertextSize } };
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
        c?.envelope_header && c.fingerprint && c.envelope_cert_sha256?.equals(m.certSha)
          ? { envelope: { header: c.envelope_header, fingerprint: c.fingerprint, size: c.envelope_header.length + m.d.ciphertextSize } }
          : { error: new Problem(storageProblems.DELIVERY_NOT_FOUND, 'The delivery was re-addressed while it was being prepared') };
    }
  } catch (err) {
    for (const m of lost) out[m.i] = { error: err };
  }
  return out;
}
