import { constants, createHash, publicEncrypt, X509Certificate, type KeyObject } from 'node:crypto';
import { explicit, header, issuerAndSerial, NULL, octets, oid, seq, set, smallInt } from './der.js';

/**
 * CMS EnvelopedData (RFC 5652) in the DPI profile, built around ciphertext that already exists:
 *
 *   ContentInfo { id-envelopedData, [0] EnvelopedData {
 *     version 0,
 *     recipientInfos SET { KeyTransRecipientInfo {
 *       version 0, issuerAndSerialNumber,
 *       id-RSAES-OAEP { [0] sha256, [1] mgf1(sha256) },   -- RFC 4055
 *       encryptedKey (the data key, RSA-OAEP under the recipient's certificate) } },
 *     encryptedContentInfo { id-data, aes256-CBC(iv), [0] IMPLICIT encryptedContent } } }
 *
 * Every length is known once the ciphertext length is, so the header is computed in full and the
 * stored ciphertext streams after it unchanged: the bytes are valid DER, and a mailbox switch
 * needs a new header, never a new encryption.
 */

export const OID = {
  envelopedData: '1.2.840.113549.1.7.3',
  data: '1.2.840.113549.1.7.1',
  rsaesOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  sha256: '2.16.840.1.101.3.4.2.1',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

export class CertificateError extends Error {
  override name = 'CertificateError';
}

const SHA256_ALG = seq(oid(OID.sha256), NULL);
const OAEP_ALG = seq(oid(OID.rsaesOaep), seq(explicit(0, SHA256_ALG), explicit(1, seq(oid(OID.mgf1), SHA256_ALG))));

export interface RecipientCertificate {
  der: Buffer;
  x509: X509Certificate;
  /** The RSA public key (x509.publicKey makes a new KeyObject at each read). */
  publicKey: KeyObject;
  /** SHA-256 of the DER certificate: which certificate an envelope was made for. */
  sha256: Buffer;
}

/** Parses and checks an encryption certificate: RSA and inside its validity period. */
export function recipientCertificate(der: Buffer, now = new Date()): RecipientCertificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch {
    throw new CertificateError('not an X.509 certificate');
  }
  const publicKey = x509.publicKey;
  if (publicKey.asymmetricKeyType !== 'rsa') throw new CertificateError('the certificate key is not RSA');
  if (new Date(x509.validFrom) > now || new Date(x509.validTo) < now) throw new CertificateError('the certificate is outside its validity period');
  return { der, x509, publicKey, sha256: createHash('sha256').update(der).digest() };
}

/** RSAES-OAEP with SHA-256 and MGF1-SHA-256 (Node sets the MGF1 hash to oaepHash). */
export function wrapForRecipient(cert: RecipientCertificate, dataKey: Buffer): Buffer {
  return publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey);
}

/**
 * The DER bytes of the whole ContentInfo up to and including the identifier and length of
 * encryptedContent; `ciphertextLength` bytes of AES-256-CBC ciphertext complete it.
 */
export function envelopeHeader(opts: { cert: RecipientCertificate; encryptedKey: Buffer; iv: Buffer; ciphertextLength: number }): Buffer {
  if (opts.iv.length !== 16) throw new RangeError('AES-CBC needs a 16-byte IV');
  if (opts.ciphertextLength % 16 !== 0) throw new RangeError('AES-CBC ciphertext is a multiple of 16 bytes');
  const { issuer, serial } = issuerAndSerial(opts.cert.der);
  const ktri = seq(smallInt(0), seq(issuer, serial), OAEP_ALG, octets(opts.encryptedKey));
  const eciHead = Buffer.concat([oid(OID.data), seq(oid(OID.aes256Cbc), octets(opts.iv)), header(0x80, opts.ciphertextLength)]);
  const eciLen = eciHead.length + opts.ciphertextLength;
  const envHead = Buffer.concat([smallInt(0), set(ktri), header(0x30, eciLen), eciHead]);
  const envLen = envHead.length + opts.ciphertextLength;
  const ciHead = Buffer.concat([oid(OID.envelopedData), header(0xa0, header(0x30, envLen).length + envLen), header(0x30, envLen), envHead]);
  const ciLen = ciHead.length + opts.ciphertextLength;
  return Buffer.concat([header(0x30, ciLen), ciHead]);
}
