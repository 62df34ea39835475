import { createCipheriv, privateDecrypt, constants, randomBytes } from 'node:crypto';
import t from 'tap';
import forge from 'node-forge';
import { CertificateError, envelopeHeader, recipientCertificate, wrapForRecipient } from '../../../shared/crypto/cms.js';
import { DerError, header, issuerAndSerial, oid, readTlv, smallInt } from '../../../shared/crypto/der.js';
import { opensslDecrypt, opensslPrint, providerCert } from '../../services/storage/fixtures.js';

const cert = providerCert('Digipost');

function envelope(plain: Buffer, c = cert) {
  const key = randomBytes(32);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  const rc = recipientCertificate(c.certDer);
  const header = envelopeHeader({ cert: rc, encryptedKey: wrapForRecipient(rc, key), iv, ciphertextLength: ct.length });
  return { cms: Buffer.concat([header, ct]), key };
}

t.test('openssl cms -decrypt gives back the content byte for byte', async (t) => {
  for (const size of [0, 15, 16, 100, 70_000]) {
    const plain = randomBytes(size);
    const { cms } = envelope(plain);
    t.same(await opensslDecrypt(t, cms, cert), plain, `${size} bytes`);
  }
});

t.test('the structure is the DPI profile: v0 EnvelopedData, one ktri by issuer+serial, OAEP-SHA256/MGF1-SHA256, AES-256-CBC', async (t) => {
  const { cms } = envelope(Buffer.from('hello'));
  const printed = await opensslPrint(t, cms);
  t.match(printed, /contentType: pkcs7-envelopedData/);
  t.match(printed, /version: 0/);
  t.match(printed, /d\.ktri:/);
  t.match(printed, /d\.issuerAndSerialNumber:/);
  t.match(printed, /algorithm: rsaesOaep/);
  // openssl prints OAEP parameters as raw bytes: look for [0] sha256 and [1] mgf1(sha256) in the DER.
  const sha256 = '300d06096086480165030402010500';
  const params = `30${'2f'}a00f${sha256}a11c301a06092a864886f70d010108${sha256}`;
  t.ok(cms.toString('hex').includes(`06092a864886f70d010107${params}`), 'id-RSAES-OAEP with SHA-256 and MGF1-SHA-256');
  t.match(printed, /algorithm: aes-256-cbc/);
  t.equal(printed.match(/d\.ktri:/g)?.length, 1, 'exactly one recipient');
  // Strict DER: the whole thing parses as one TLV spanning every byte.
  const top = readTlv(cms, 0);
  t.equal(top.end, cms.length);
  const asn1 = forge.asn1.fromDer(forge.util.createBuffer(cms.toString('binary')), true);
  t.equal(forge.asn1.derToOid(forge.util.createBuffer((asn1.value as forge.asn1.Asn1[])[0]!.value as string)), '1.2.840.113549.1.7.3');
});

t.test('the encrypted key opens with OAEP SHA-256 only under the recipient key', async (t) => {
  const rc = recipientCertificate(cert.certDer);
  const key = randomBytes(32);
  const wrapped = wrapForRecipient(rc, key);
  t.equal(wrapped.length, 256);
  t.same(privateDecrypt({ key: cert.keyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped), key);
  const other = providerCert('Other');
  t.throws(() => privateDecrypt({ key: other.keyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, wrapped));
});

t.test('issuer and serial are sliced from the certificate exactly', async (t) => {
  const c = providerCert('Serial', { serial: '00ff01' });
  const { issuer, serial } = issuerAndSerial(c.certDer);
  const parsed = forge.pki.certificateFromPem(c.certPem);
  t.equal(serial[0], 0x02, 'an INTEGER');
  t.equal(BigInt(`0x${parsed.serialNumber}`), BigInt(`0x${serial.subarray(2).toString('hex')}`), 'the certificate serial');
  t.equal(Buffer.from(forge.asn1.toDer(forge.pki.distinguishedNameToAsn1(parsed.issuer)).getBytes(), 'binary').toString('hex'), issuer.toString('hex'));
});

t.test('unusable certificates are refused', async (t) => {
  const expired = providerCert('Old', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  t.throws(() => recipientCertificate(expired.certDer), CertificateError);
  t.throws(() => recipientCertificate(Buffer.from('not a cert')), CertificateError);
});

t.test('DER helpers', async (t) => {
  t.same(header(0x04, 5), Buffer.from([0x04, 5]));
  t.same(header(0x04, 200), Buffer.from([0x04, 0x81, 200]));
  t.same(header(0x04, 70_000), Buffer.from([0x04, 0x83, 0x01, 0x11, 0x70]));
  t.throws(() => header(0x04, -1), RangeError);
  t.same(oid('1.2.840.113549.1.7.3'), Buffer.from('06092a864886f70d010703', 'hex'));
  t.throws(() => oid('1'), RangeError);
  t.throws(() => smallInt(200), RangeError);
  t.throws(() => readTlv(Buffer.from([0x30]), 0), DerError);
  t.throws(() => readTlv(Buffer.from([0x30, 0x05, 0x01]), 0), DerError);
  t.throws(() => readTlv(Buffer.from([0x1f, 0x01, 0x00]), 0), DerError);
  t.throws(() => readTlv(Buffer.from([0x30, 0x80]), 0), DerError);
  t.throws(() => issuerAndSerial(Buffer.from([0x30, 0x00])), DerError);
  t.throws(() => issuerAndSerial(Buffer.from([0x04, 0x00])), DerError);
  t.throws(() => envelopeHeader({ cert: recipientCertificate(cert.certDer), encryptedKey: Buffer.alloc(256), iv: Buffer.alloc(8), ciphertextLength: 16 }), RangeError);
  t.throws(() => envelopeHeader({ cert: recipientCertificate(cert.certDer), encryptedKey: Buffer.alloc(256), iv: Buffer.alloc(16), ciphertextLength: 17 }), RangeError);
});
