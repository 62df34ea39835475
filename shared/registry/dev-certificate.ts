import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface DevCertificate {
  certPem: string;
  keyPem: string;
  der: Buffer;
}

export interface DevCertificateOptions {
  commonName: string;
  /** Organisation number, written as organizationIdentifier-style serialNumber in the subject. */
  orgnr?: string;
  bits?: number;
  notBefore?: Date;
  notAfter?: Date;
  /** Key usage bits; default keyEncipherment + dataEncipherment. `false` omits the extension. */
  keyUsage?: { keyEncipherment?: boolean; digitalSignature?: boolean; dataEncipherment?: boolean } | false;
}

/**
 * A self-signed RSA encryption certificate for development and tests (never for production):
 * the key is generated with node:crypto (native, fast) and the certificate built with
 * node-forge, which node:crypto cannot do.
 */
export function createDevCertificate(opts: DevCertificateOptions): DevCertificate {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: opts.bits ?? 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const fKey = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(fKey.n, fKey.e);
  // A positive serial: a leading byte below 0x80.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = opts.notAfter ?? new Date(notBefore.getTime() + 3 * 365 * 86_400_000);
  const attrs = [
    { shortName: 'C', value: 'NO' },
    { shortName: 'O', value: opts.commonName },
    { shortName: 'CN', value: opts.commonName },
    ...(opts.orgnr ? [{ name: 'serialNumber', value: opts.orgnr }] : []),
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  const extensions: object[] = [{ name: 'basicConstraints', cA: false }];
  if (opts.keyUsage !== false) {
    const ku = opts.keyUsage ?? { keyEncipherment: true, dataEncipherment: true };
    extensions.push({ name: 'keyUsage', critical: true, ...ku });
  }
  cert.setExtensions(extensions);
  cert.sign(fKey, forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { certPem: forge.pki.certificateToPem(cert), keyPem, der };
}
