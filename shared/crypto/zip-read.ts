import { inflateRawSync } from 'node:zlib';

/**
 * Reads a whole ZIP held in memory through its central directory (the sizes there are exact
 * even when entries carry data descriptors, as the hub's own writer makes them). Stored and
 * deflated entries; no ZIP64, no encryption. Used to check a package a provider sends back.
 */
export class ZipReadError extends Error {
  override name = 'ZipReadError';
}

export function readZip(zip: Buffer, opts: { maxEntryBytes: number }): Map<string, Buffer> {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65_535); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipReadError('no end of central directory');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || at === 0xffffffff) throw new ZipReadError('ZIP64 is not supported');
  const out = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== 0x02014b50) throw new ZipReadError('broken central directory');
    const flags = zip.readUInt16LE(at + 8);
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLen = zip.readUInt16LE(at + 28);
    const extraLen = zip.readUInt16LE(at + 30);
    const commentLen = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.subarray(at + 46, at + 46 + nameLen).toString('utf8');
    at += 46 + nameLen + extraLen + commentLen;
    if (flags & 1) throw new ZipReadError('encrypted entries are not supported');
    if (size > opts.maxEntryBytes) throw new ZipReadError(`entry ${n} is larger than allowed`);
    if (local + 30 > zip.length || zip.readUInt32LE(local) !== 0x04034b50) throw new ZipReadError('broken local header');
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    if (start + compressed > zip.length) throw new ZipReadError('entry runs past the end');
    const body = zip.subarray(start, start + compressed);
    let data: Buffer;
    if (method === 0) data = Buffer.from(body);
    else if (method === 8) {
      try {
        data = inflateRawSync(body, { maxOutputLength: Math.max(1, size) });
      } catch {
        throw new ZipReadError(`entry ${n} does not inflate`);
      }
    } else throw new ZipReadError(`compression method ${method} is not supported`);
    if (data.length !== size) throw new ZipReadError(`entry ${n} has the wrong size`);
    if (out.has(name)) throw new ZipReadError('duplicate entry names');
    out.set(name, data);
  }
  return out;
}
