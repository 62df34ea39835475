import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';

export type CertificateFault = 'unparseable' | 'not-rsa' | 'key-too-small' | 'not-yet-valid' | 'expired' | 'no-key-encipherment';

export class CertificateError extends Error {
  constructor(
    readonly reason: CertificateFault,
    message: string,
  ) {
    super(message);
    this.name = 'CertificateError';
  }
}

export const MIN_RSA_BITS = 2048;

/**
 * A certificate as clients send it in JSON: PEM text, or base64 of the DER bytes (KRR's
 * `sertifikat` form). Returns the DER.
 */
export function decodeCertificate(input: string): Buffer {
  const text = input.trim();
  const pem = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(text);
  const b64 = (pem ? pem[1]! : text).replace(/\s+/g, '');
  if (b64.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new CertificateError('unparseable', 'certificate must be PEM or base64-encoded DER');
  }
  return Buffer.from(b64, 'base64');
}

export interface CheckedCertificate {
  der: Buffer;
  subject: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  keyBits: number;
}

/**
 * Checks an encryption certificate a provider (or mailbox) registers: it parses as X.509, holds
 * an RSA key of at least 2048 bits, is within its validity period at `now`, and its key usage
 * (when the extension is present; RFC 5280 treats an absent one as unrestricted) allows
 * keyEncipherment, which the DPI profile's RSAES-OAEP key transport needs.
 */
export function checkEncryptionCertificate(der: Buffer, now: Date = new Date()): CheckedCertificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw new CertificateError('unparseable', 'not an X.509 certificate');
  }
  const key = cert.publicKey;
  if (key.asymmetricKeyType !== 'rsa') {
    throw new CertificateError('not-rsa', `the key must be RSA, not ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) throw new CertificateError('key-too-small', `the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (now < notBefore) throw new CertificateError('not-yet-valid', `the certificate is valid from ${notBefore.toISOString()}`);
  if (now > notAfter) throw new CertificateError('expired', `the certificate expired ${notAfter.toISOString()}`);
  const usage = keyUsageOf(der);
  if (usage && !usage.keyEncipherment) {
    throw new CertificateError('no-key-encipherment', 'the key usage extension does not allow keyEncipherment');
  }
  return { der: Buffer.from(der), subject: cert.subject, serialNumber: cert.serialNumber, notBefore, notAfter, keyBits: bits };
}

/** The keyUsage extension's bits, or undefined when the certificate has none. */
function keyUsageOf(der: Buffer): { keyEncipherment: boolean } | undefined {
  let parsed: forge.pki.Certificate;
  try {
    parsed = forge.pki.certificateFromAsn1(forge.asn1.fromDer(forge.util.createBuffer(der.toString('binary'))));
  } catch {
    throw new CertificateError('unparseable', 'the certificate could not be decoded');
  }
  const ext = parsed.getExtension('keyUsage') as { keyEncipherment?: boolean } | undefined;
  return ext ? { keyEncipherment: ext.keyEncipherment === true } : undefined;
}
