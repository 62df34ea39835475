import { constants, createDecipheriv, privateDecrypt, type KeyObject } from 'node:crypto';
import { children, DerError, issuerAndSerial, raw, readTlv, TAG, type Tlv } from './der.js';
import { OID } from './cms.js';

/**
 * Opening CMS EnvelopedData sent *to* the hub, in the profile the hub itself sends (shared/crypto/
 * cms.ts): one KeyTransRecipientInfo with RSAES-OAEP (SHA-256) for the hub's certificate,
 * AES-256-CBC content. Definite lengths (DER, or BER with a constructed encryptedContent as
 * openssl may write). Anything else is refused with a reason, never guessed at.
 */
export class CmsError extends Error {
  override name = 'CmsError';
}

function decodeOid(buf: Buffer, t: Tlv): string {
  if (t.tag !== TAG.OID) throw new CmsError('expected an OBJECT IDENTIFIER');
  const bytes = buf.subarray(t.contentStart, t.end);
  const out: number[] = [];
  let v = 0;
  for (const b of bytes) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (out.length === 0) out.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else out.push(v);
      v = 0;
    }
  }
  return out.join('.');
}

export interface OpenedEnvelope {
  /** The content-encryption key (AES-256), unwrapped with the hub's private key. */
  dataKey: Buffer;
  iv: Buffer;
  /** The AES-256-CBC ciphertext exactly as sent. */
  ciphertext: Buffer;
}

/** Parses `cms` and unwraps its data key for the hub's certificate; the content stays encrypted. */
export function openEnvelope(cms: Buffer, recipient: { certificateDer: Buffer; privateKey: KeyObject }): OpenedEnvelope {
  try {
    const ci = readTlv(cms, 0);
    if (ci.tag !== TAG.SEQUENCE || ci.end !== cms.length) throw new CmsError('not one DER ContentInfo');
    const [type, wrapped] = children(cms, ci);
    if (!type || decodeOid(cms, type) !== OID.envelopedData || wrapped?.tag !== 0xa0) throw new CmsError('not EnvelopedData');
    const [env] = children(cms, wrapped);
    if (env?.tag !== TAG.SEQUENCE) throw new CmsError('EnvelopedData is not a SEQUENCE');
    const fields = children(cms, env).filter((f) => f.tag !== 0xa0); // [0] originatorInfo is optional
    const [, ris, eci] = fields;
    if (ris?.tag !== TAG.SET || eci?.tag !== TAG.SEQUENCE) throw new CmsError('EnvelopedData lacks recipientInfos or encryptedContentInfo');
    const mine = issuerAndSerial(recipient.certificateDer);
    let encryptedKey: Buffer | undefined;
    for (const ri of children(cms, ris)) {
      if (ri.tag !== TAG.SEQUENCE) continue; // only KeyTransRecipientInfo
      const [, rid, alg, ek] = children(cms, ri);
      if (rid?.tag !== TAG.SEQUENCE || !alg || ek?.tag !== TAG.OCTET_STRING) continue;
      const [issuer, serial] = children(cms, rid);
      if (!issuer || !serial || !raw(cms, issuer).equals(mine.issuer) || !raw(cms, serial).equals(mine.serial)) continue;
      const [algOid, params] = children(cms, alg);
      if (!algOid || decodeOid(cms, algOid) !== OID.rsaesOaep) throw new CmsError('key transport must be RSAES-OAEP');
      const hash = params && children(cms, params).find((p) => p.tag === 0xa0);
      const hashAlg = hash && children(cms, hash)[0];
      const hashOid = hashAlg && children(cms, hashAlg)[0];
      if (!hashOid || decodeOid(cms, hashOid) !== OID.sha256) throw new CmsError('RSAES-OAEP must use SHA-256');
      encryptedKey = cms.subarray(ek.contentStart, ek.end);
    }
    if (!encryptedKey) throw new CmsError('no recipient is the hub transport certificate');
    const [contentType, contentAlg, content] = children(cms, eci);
    if (!contentType || decodeOid(cms, contentType) !== OID.data) throw new CmsError('the content type must be id-data');
    const [encOid, ivTlv] = contentAlg ? children(cms, contentAlg) : [];
    if (!encOid || decodeOid(cms, encOid) !== OID.aes256Cbc || ivTlv?.tag !== TAG.OCTET_STRING || ivTlv.end - ivTlv.contentStart !== 16) {
      throw new CmsError('content encryption must be AES-256-CBC with a 16-byte IV');
    }
    let ciphertext: Buffer;
    if (content?.tag === 0x80) ciphertext = cms.subarray(content.contentStart, content.end);
    else if (content?.tag === 0xa0) ciphertext = Buffer.concat(children(cms, content).map((c) => cms.subarray(c.contentStart, c.end)));
    else throw new CmsError('no encryptedContent');
    if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) throw new CmsError('AES-CBC ciphertext must be a non-empty multiple of 16 bytes');
    let dataKey: Buffer;
    try {
      dataKey = privateDecrypt({ key: recipient.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, encryptedKey);
    } catch {
      throw new CmsError('the data key does not open with the hub transport key');
    }
    if (dataKey.length !== 32) throw new CmsError('the data key is not 32 bytes (AES-256)');
    return { dataKey, iv: Buffer.from(cms.subarray(ivTlv.contentStart, ivTlv.end)), ciphertext };
  } catch (err) {
    if (err instanceof CmsError) throw err;
    if (err instanceof DerError) throw new CmsError(`not valid DER: ${err.message}`);
    throw err;
  }
}

/** The plaintext (the ASiC-E ZIP) of an opened envelope; a wrong key or padding is a CmsError. */
export function decryptContent(env: OpenedEnvelope): Buffer {
  try {
    const d = createDecipheriv('aes-256-cbc', env.dataKey, env.iv);
    return Buffer.concat([d.update(env.ciphertext), d.final()]);
  } catch {
    throw new CmsError('the content does not decrypt (bad padding)');
  }
}
