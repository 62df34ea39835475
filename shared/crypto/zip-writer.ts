import { constants, crc32, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { pipeline, Readable } from 'node:stream';

/**
 * A small streaming ZIP writer: just what the package needs, with the CRC-32 and deflate done
 * natively (`zlib.crc32`, Node >= 20.15). yazl computed CRC-32 in JavaScript and deflated every
 * byte, which held sealing to ~20 MB/s; here a document that does not compress (most letters are
 * PDFs or images) is written as deflate *stored blocks*, close to memcpy speed.
 *
 * Java compatibility (ZipInputStream, common at mailbox providers): an entry of unknown size needs
 * a data descriptor, and ZipInputStream accepts that only for method 8 (deflate). Streamed entries
 * are therefore always method 8, even when their blocks are stored; entries whose bytes are known
 * up front (mimetype, manifest, signature) carry sizes and CRC in the local header instead.
 * No extra fields and no ZIP64 (letters are capped far below 4 GiB): `mimetype` starts at byte 30
 * and its value at byte 38, as ASiC-E requires.
 */

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const VERSION_NEEDED = 20; // 2.0: deflate
const VERSION_MADE_BY = (3 << 8) | 20; // Unix, 2.0: external attributes are Unix modes
const UNIX_FILE_MODE = 0o100644;
const MAX_32 = 0xffffffff;
const STORED_BLOCK_MAX = 0xffff;
/** Bytes of a document tried with deflate before choosing how to write it. */
const PROBE_BYTES = 64 * 1024;
/** Compress only when the probe shrinks by at least this much; below it, deflate is wasted CPU. */
const WORTH_COMPRESSING = 0.95;

export class ZipLimitError extends Error {
  override name = 'ZipLimitError';
}

interface Entry {
  name: Buffer;
  flags: number;
  method: 0 | 8;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
}

/** MS-DOS date and time (local time, 2-second resolution), as ZIP tools expect. */
function dosDateTime(d: Date): { date: number; time: number } {
  const year = Math.min(Math.max(d.getFullYear(), 1980), 2107);
  return {
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
  };
}

/**
 * Deflate stored blocks around `data` (RFC 1951 3.2.4: BTYPE 00, LEN, NLEN, raw bytes), never
 * final; `finalStoredBlock` ends the stream.
 */
function storedBlocks(data: Buffer): Buffer {
  const blocks = Math.ceil(data.length / STORED_BLOCK_MAX);
  const out = Buffer.allocUnsafe(data.length + 5 * blocks);
  let at = 0;
  for (let from = 0; from < data.length; from += STORED_BLOCK_MAX) {
    const len = Math.min(STORED_BLOCK_MAX, data.length - from);
    out[at] = 0;
    out.writeUInt16LE(len, at + 1);
    out.writeUInt16LE(~len & 0xffff, at + 3);
    at += 5 + data.copy(out, at + 5, from, from + len);
  }
  return out;
}
const FINAL_STORED_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);

export class ZipWriter {
  private readonly entries: Entry[] = [];
  private offset = 0;
  private readonly dos: { date: number; time: number };

  constructor(mtime: Date) {
    this.dos = dosDateTime(mtime);
  }

  /** An entry whose bytes are all known: sizes and CRC go in the local header. */
  file(name: string, data: Buffer, opts: { compress: boolean; level?: number }): Buffer {
    return this.known(name, data, opts.compress ? 8 : 0, opts.compress ? deflateRawSync(data, { level: opts.level ?? 1 }) : data);
  }

  /**
   * A document whose bytes are all in memory (a small letter): method 8 like a streamed one and
   * compressed by the same rule, but with sizes and CRC in the local header (no data descriptor).
   */
  document(name: string, data: Buffer, level: number): Buffer {
    const probe = level > 0 && data.length > 0 ? data.subarray(0, PROBE_BYTES) : null;
    const probed = probe === null ? null : deflateRawSync(probe, { level });
    const compress = probed !== null && probed.length < probe!.length * WORTH_COMPRESSING;
    let body: Buffer;
    if (!compress) body = Buffer.concat([storedBlocks(data), FINAL_STORED_BLOCK]);
    else body = data.length <= PROBE_BYTES ? probed : deflateRawSync(data, { level });
    if (data.length > MAX_32 || body.length > MAX_32) throw new ZipLimitError(`entry ${name} is larger than 4 GiB`);
    return this.known(name, data, 8, body);
  }

  private known(name: string, data: Buffer, method: 0 | 8, body: Buffer): Buffer {
    const entry = this.entry(name, 0, method);
    entry.crc = crc32(data);
    entry.size = data.length;
    entry.compressedSize = body.length;
    const header = this.localHeader(entry);
    this.offset += header.length + body.length;
    return Buffer.concat([header, body]);
  }

  /**
   * A streamed entry (method 8, data descriptor). `tap` sees every input chunk before it is
   * written. With `level` 0 the blocks are stored; otherwise the first 64 KB decide: deflate at
   * `level` if it saves at least 5%, stored blocks if not.
   */
  async *stream(name: string, source: AsyncIterable<Buffer>, level: number, tap: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
    const entry = this.entry(name, FLAG_DATA_DESCRIPTOR, 8);
    const header = this.localHeader(entry);
    this.offset += header.length;
    yield header;

    const input = source[Symbol.asyncIterator]();
    let crc = 0;
    let size = 0;
    let compressedSize = 0;
    let completed = false;
    const next = async (): Promise<Buffer | undefined> => {
      const r = await input.next();
      if (r.done) return undefined;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      crc = crc32(chunk, crc);
      size += chunk.length;
      if (size > MAX_32) throw new ZipLimitError(`entry ${name} is larger than 4 GiB`);
      tap(chunk);
      return chunk;
    };
    try {
      const head: Buffer[] = [];
      let headBytes = 0;
      let ended = false;
      while (level > 0 && headBytes < PROBE_BYTES) {
        const chunk = await next();
        if (!chunk) {
          ended = true;
          break;
        }
        head.push(chunk);
        headBytes += chunk.length;
      }
      const probe = head.length === 0 ? null : Buffer.concat(head, headBytes).subarray(0, PROBE_BYTES);
      const probed = probe === null ? null : deflateRawSync(probe, { level });
      const compress = probed !== null && probed.length < probe!.length * WORTH_COMPRESSING;
      if (compress && ended) {
        // The whole document was the probe (most letters): its deflate stream is the entry.
        compressedSize += probed.length;
        yield probed;
      } else if (compress) {
        async function* rest() {
          yield* head;
          for (let chunk = await next(); chunk; chunk = await next()) yield chunk;
        }
        const deflated = pipeline(Readable.from(rest()), createDeflateRaw({ level, flush: constants.Z_NO_FLUSH }), () => undefined);
        for await (const out of deflated as AsyncIterable<Buffer>) {
          compressedSize += out.length;
          yield out;
        }
      } else {
        for (const chunk of head) {
          const out = storedBlocks(chunk);
          compressedSize += out.length;
          yield out;
        }
        for (let chunk = await next(); chunk; chunk = await next()) {
          const out = storedBlocks(chunk);
          compressedSize += out.length;
          yield out;
        }
        compressedSize += FINAL_STORED_BLOCK.length;
        yield FINAL_STORED_BLOCK;
      }
      completed = true;
    } finally {
      // Stopped early (error or abort): let the source clean up (a Readable is destroyed).
      if (!completed) await input.return?.();
    }
    if (compressedSize > MAX_32) throw new ZipLimitError(`entry ${name} is larger than 4 GiB`);
    Object.assign(entry, { crc, size, compressedSize });
    const descriptor = Buffer.allocUnsafe(16);
    descriptor.writeUInt32LE(DATA_DESCRIPTOR, 0);
    descriptor.writeUInt32LE(crc >>> 0, 4);
    descriptor.writeUInt32LE(compressedSize, 8);
    descriptor.writeUInt32LE(size, 12);
    this.offset += compressedSize + descriptor.length;
    yield descriptor;
  }

  /** The central directory and its end record: the last bytes of the archive. */
  finish(): Buffer {
    const start = this.offset;
    const parts = this.entries.map((e) => {
      const h = Buffer.alloc(46);
      h.writeUInt32LE(CENTRAL_HEADER, 0);
      h.writeUInt16LE(VERSION_MADE_BY, 4);
      h.writeUInt16LE(VERSION_NEEDED, 6);
      h.writeUInt16LE(e.flags, 8);
      h.writeUInt16LE(e.method, 10);
      h.writeUInt16LE(this.dos.time, 12);
      h.writeUInt16LE(this.dos.date, 14);
      h.writeUInt32LE(e.crc >>> 0, 16);
      h.writeUInt32LE(e.compressedSize, 20);
      h.writeUInt32LE(e.size, 24);
      h.writeUInt16LE(e.name.length, 28);
      h.writeUInt32LE((UNIX_FILE_MODE << 16) >>> 0, 38);
      h.writeUInt32LE(e.offset, 42);
      return Buffer.concat([h, e.name]);
    });
    const directory = Buffer.concat(parts);
    if (start + directory.length > MAX_32) throw new ZipLimitError('the archive is larger than 4 GiB');
    const end = Buffer.alloc(22);
    end.writeUInt32LE(END_OF_CENTRAL_DIRECTORY, 0);
    end.writeUInt16LE(this.entries.length, 8);
    end.writeUInt16LE(this.entries.length, 10);
    end.writeUInt32LE(directory.length, 12);
    end.writeUInt32LE(start, 16);
    this.offset += directory.length + end.length;
    return Buffer.concat([directory, end]);
  }

  private entry(name: string, flags: number, method: 0 | 8): Entry {
    if (this.offset > MAX_32) throw new ZipLimitError('the archive is larger than 4 GiB');
    const entry: Entry = { name: Buffer.from(name, 'utf8'), flags: flags | FLAG_UTF8, method, crc: 0, compressedSize: 0, size: 0, offset: this.offset };
    this.entries.push(entry);
    return entry;
  }

  private localHeader(e: Entry): Buffer {
    const h = Buffer.alloc(30 + e.name.length);
    h.writeUInt32LE(LOCAL_HEADER, 0);
    h.writeUInt16LE(VERSION_NEEDED, 4);
    h.writeUInt16LE(e.flags, 6);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt16LE(this.dos.time, 10);
    h.writeUInt16LE(this.dos.date, 12);
    // With a data descriptor these stay 0 here and follow the data.
    h.writeUInt32LE(e.crc >>> 0, 14);
    h.writeUInt32LE(e.compressedSize, 18);
    h.writeUInt32LE(e.size, 22);
    h.writeUInt16LE(e.name.length, 26);
    e.name.copy(h, 30);
    return h;
  }
}
