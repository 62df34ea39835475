/**
 * The few DER pieces the CMS header needs. Encoding is done by hand because every length must be
 * computed before the ciphertext is streamed; decoding only walks a certificate far enough to
 * slice out its issuer and serial number byte for byte.
 */

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The identifier and length octets of a TLV whose content is `length` bytes. */
export function header(tag: number, length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad DER length ${length}`);
  if (length < 0x80) return Buffer.from([tag, length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([header(tag, body.length), body]);
}

export const seq = (...content: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...content);
export const set = (...content: Buffer[]): Buffer => tlv(TAG.SET, ...content);
export const octets = (b: Buffer): Buffer => tlv(TAG.OCTET_STRING, b);
export const NULL = Buffer.from([TAG.NULL, 0]);
/** Context-specific constructed [n] (EXPLICIT tagging). */
export const explicit = (n: number, ...content: Buffer[]): Buffer => tlv(0xa0 | n, ...content);

export function smallInt(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 127) throw new RangeError('smallInt takes 0..127');
  return Buffer.from([TAG.INTEGER, 1, n]);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  if (parts.length < 2 || parts.some((p) => !Number.isInteger(p) || p < 0)) throw new RangeError(`bad OID ${dotted}`);
  const bytes: number[] = [];
  const push = (v: number) => {
    const group: number[] = [v & 0x7f];
    for (let n = Math.floor(v / 128); n > 0; n = Math.floor(n / 128)) group.unshift(0x80 | (n & 0x7f));
    bytes.push(...group);
  };
  push(parts[0]! * 40 + parts[1]!);
  for (const p of parts.slice(2)) push(p);
  return tlv(TAG.OID, Buffer.from(bytes));
}

export interface Tlv {
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  /** Offset of the first content octet. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

export class DerError extends Error {
  override name = 'DerError';
}

/** Reads one TLV at `offset` (definite lengths only, as DER requires). */
export function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new DerError('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not supported');
  const first = buf[offset + 1]!;
  let length = first;
  let contentStart = offset + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 6) throw new DerError('indefinite or oversized length');
    if (contentStart + n > buf.length) throw new DerError('truncated DER');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[contentStart + i]!;
    contentStart += n;
  }
  const end = contentStart + length;
  if (end > buf.length) throw new DerError('truncated DER');
  return { tag, start: offset, contentStart, end };
}

/** The TLVs directly inside a constructed TLV. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(buf, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

export const raw = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

/** issuer Name and serialNumber INTEGER of an X.509 certificate, exactly as encoded in it. */
export function issuerAndSerial(certDer: Buffer): { issuer: Buffer; serial: Buffer } {
  const cert = readTlv(certDer, 0);
  if (cert.tag !== TAG.SEQUENCE || cert.end !== certDer.length) throw new DerError('not a DER certificate');
  const [tbs] = children(certDer, cert);
  if (!tbs || tbs.tag !== TAG.SEQUENCE) throw new DerError('certificate has no tbsCertificate');
  const fields = children(certDer, tbs);
  const i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version is optional
  const serial = fields[i];
  const issuer = fields[i + 2];
  if (serial?.tag !== TAG.INTEGER || issuer?.tag !== TAG.SEQUENCE) throw new DerError('certificate lacks serial or issuer');
  return { issuer: raw(certDer, issuer), serial: raw(certDer, serial) };
}
