import { createHash } from 'node:crypto';
import { envelopeHeader, recipientCertificate, wrapForRecipient, CertificateError } from '../../shared/crypto/cms.js';
import { openPackageKey } from '../../shared/storage/packages.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { Problem } from '../../shared/errors/problem.js';
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

export async function ensureEnvelope(ctx: StorageContext, d: EnvelopeTarget, now = new Date()): Promise<Envelope> {
  if (!d.certificateDer) throw new Problem(storageProblems.CERTIFICATE_UNUSABLE, 'No encryption certificate is registered for this recipient');
  const certSha = createHash('sha256').update(d.certificateDer).digest();
  if (d.envelopeHeader && d.fingerprint && d.envelopeCertSha256?.equals(certSha)) {
    return { header: d.envelopeHeader, fingerprint: d.fingerprint, size: d.envelopeHeader.length + d.ciphertextSize };
  }
  let cert;
  try {
    cert = recipientCertificate(d.certificateDer, now);
  } catch (err) {
    if (err instanceof CertificateError) throw new Problem(storageProblems.CERTIFICATE_UNUSABLE, `The registered certificate cannot be used: ${err.message}`);
    throw err;
  }
  const { row, dataKey } = await openPackageKey(ctx, d.packageId);
  let header: Buffer;
  try {
    header = envelopeHeader({ cert, encryptedKey: wrapForRecipient(cert, dataKey), iv: row.iv, ciphertextLength: d.ciphertextSize });
  } finally {
    dataKey.fill(0);
  }
  const hash = createHash('sha256').update(header);
  for await (const piece of ctx.blobs.read(d.packageId, d.chunks)) hash.update(piece);
  const fingerprint = hash.digest();
  // First writer wins: a concurrent pull that made another header (OAEP is randomised) uses the stored one.
  const stored = await ctx.db
    .updateTable('deliveries')
    .set({ envelope_header: header, envelope_cert_sha256: certSha, fingerprint })
    .where('id', '=', d.id)
    .where('provider_orgnr', '=', d.providerOrgnr)
    .where((eb) => eb.or([eb('envelope_cert_sha256', 'is', null), eb('envelope_cert_sha256', '!=', certSha)]))
    .returning('id')
    .executeTakeFirst();
  if (stored) return { header, fingerprint, size: header.length + d.ciphertextSize };
  const current = await ctx.db
    .selectFrom('deliveries')
    .select(['envelope_header', 'fingerprint', 'envelope_cert_sha256'])
    .where('id', '=', d.id)
    .executeTakeFirstOrThrow();
  if (!current.envelope_header || !current.fingerprint || !current.envelope_cert_sha256?.equals(certSha)) {
    throw new Problem(storageProblems.DELIVERY_NOT_FOUND, 'The delivery was re-addressed while it was being prepared');
  }
  return { header: current.envelope_header, fingerprint: current.fingerprint, size: current.envelope_header.length + d.ciphertextSize };
}
