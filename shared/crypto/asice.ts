import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ZipWriter } from './zip-writer.js';

/**
 * The letter package: an ASiC-E style ZIP (ETSI EN 319 162), built as a stream.
 *
 *   mimetype                  first, stored, "application/vnd.etsi.asic-e+zip"
 *   <document 1..n>           deflated, hashed (SHA-256) and counted while they stream through
 *   manifest.json             metadata and {name, mime, size, sha256} of every document
 *   META-INF/manifest.jws     ES256 JWS by the hub over the exact bytes of manifest.json
 *                             (detached payload, RFC 7515 appendix F)
 *
 * The manifest comes after the documents because it holds their hashes and the documents pass
 * through only once (ASiC-E fixes only `mimetype` as the first entry). Documents use method 8
 * (deflate), never method 0: a stored entry of unknown size needs a data descriptor, which Java's
 * ZipInputStream, common at mailbox providers, rejects. Incompressible ones are written as
 * deflate stored blocks, which costs no compression work (zip-writer.ts).
 */
export const ASICE_MIMETYPE = 'application/vnd.etsi.asic-e+zip';
export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_JWS_NAME = 'META-INF/manifest.jws';

export interface PrintInstructions {
  recipient: Record<string, unknown>;
  returnAddress: Record<string, unknown>;
  color: 'BW' | 'COLOR';
  class: 'A' | 'B';
  returnHandling: 'RETURN' | 'SHRED';
}

/**
 * What the signed manifest says: the letter (who sent it to whom, what it is, how it may be
 * opened), never where it is routed. A letter's route changes after sealing (the citizen switches
 * mailbox, the print fallback), and the ciphertext is never re-encrypted, so a mailbox or print
 * address signed inside it would go stale. Routing is signed per delivery instead
 * (shared/storage/routing.ts, the listing's `routing`); docs/storage.md says why.
 */
export interface ManifestInput {
  messageId: string;
  sender: { orgnr: string; name?: string };
  recipient: { personId: string };
  title: string;
  language: 'nb' | 'nn' | 'en' | 'se';
  securityLevel: 3 | 4;
  availableAt: string;
  openReceipt: boolean;
}

/** Exactly the manifest's fields, whatever else the caller's object carries (routing stays out). */
export function letterManifest(input: ManifestInput): ManifestInput {
  const { messageId, sender, recipient, title, language, securityLevel, availableAt, openReceipt } = input;
  return {
    messageId,
    sender: { orgnr: sender.orgnr, ...(sender.name === undefined ? {} : { name: sender.name }) },
    recipient: { personId: recipient.personId },
    title,
    language,
    securityLevel,
    availableAt,
    openReceipt,
  };
}

export interface DocumentEntry {
  name: string;
  mime: string;
  size: number;
  /** Lowercase hex. */
  sha256: string;
}

export interface Manifest extends ManifestInput {
  createdAt: string;
  documents: DocumentEntry[];
}

export interface DocumentInput {
  name: string;
  mime: string;
  stream: Readable | AsyncIterable<Uint8Array>;
}

/** A document already in memory (a small letter, sealed in one go). */
export interface DocumentData {
  name: string;
  mime: string;
  data: Buffer;
}

export class PackageError extends Error {
  override name = 'PackageError';
}

const RESERVED = new Set(['mimetype', MANIFEST_NAME]);
// A plain file name: no folders, no control characters, not hidden, not a reserved entry.
const NAME = /^[^/\\\u0000-\u001f\u007f]{1,255}$/u;

export function checkDocumentName(name: string, seen: Set<string>): void {
  if (!NAME.test(name) || name.startsWith('.') || name.trim() !== name) throw new PackageError(`document name "${name}" is not a plain file name`);
  const key = name.toLowerCase();
  if (RESERVED.has(key) || key.startsWith('meta-inf')) throw new PackageError(`document name "${name}" is reserved in the package`);
  if (seen.has(key)) throw new PackageError(`document name "${name}" appears twice`);
  seen.add(key);
}

/**
 * Streams the package. `stream` must be consumed for the work to progress; `manifest` settles
 * when the ZIP is complete (or rejects, and `stream` errors, when a document fails). `abort`
 * stops everything when the consumer fails (the current document stream is destroyed too).
 *
 * `compressionLevel` (default 1) applies to documents that compress; one whose first 64 KB do
 * not shrink by 5% is written as stored deflate blocks (see zip-writer.ts). 0 stores everything.
 */
export function buildPackage(
  input: ManifestInput,
  documents: AsyncIterable<DocumentInput> | Iterable<DocumentInput>,
  sign: (manifestJson: Buffer) => Promise<string>,
  opts: { compressionLevel?: number; now?: Date } = {},
): { stream: Readable; manifest: Promise<Manifest>; abort(err: Error): void } {
  const mtime = opts.now ?? new Date();
  const level = opts.compressionLevel ?? 1;
  const zip = new ZipWriter(mtime);

  let current: DocumentInput['stream'] | undefined;
  let aborted: Error | undefined;
  let settle!: { resolve(m: Manifest): void; reject(err: unknown): void };
  const manifest = new Promise<Manifest>((resolve, reject) => (settle = { resolve, reject }));
  manifest.catch(() => undefined); // the caller awaits it; an abort before that is not unhandled

  async function* produce(): AsyncGenerator<Buffer> {
    yield zip.file('mimetype', Buffer.from(ASICE_MIMETYPE, 'ascii'), { compress: false });
    const entries: DocumentEntry[] = [];
    const seen = new Set<string>();
    for await (const doc of documents) {
      if (aborted) {
        if (doc.stream instanceof Readable) doc.stream.destroy(aborted);
        throw aborted;
      }
      checkDocumentName(doc.name, seen);
      const hash = createHash('sha256');
      let size = 0;
      current = doc.stream;
      yield* zip.stream(doc.name, doc.stream as AsyncIterable<Buffer>, level, (chunk) => {
        hash.update(chunk);
        size += chunk.length;
      });
      entries.push({ name: doc.name, mime: doc.mime, size, sha256: hash.digest('hex') });
    }
    current = undefined;
    if (entries.length === 0) throw new PackageError('a package needs at least one document');
    const built: Manifest = { ...letterManifest(input), createdAt: mtime.toISOString(), documents: entries };
    const json = Buffer.from(JSON.stringify(built));
    yield zip.file(MANIFEST_NAME, json, { compress: false }); // see buildPackageInMemory
    yield zip.file(MANIFEST_JWS_NAME, Buffer.from(await sign(json), 'ascii'), { compress: false });
    yield zip.finish();
    settle.resolve(built);
  }

  const out = Readable.from(
    (async function* () {
      try {
        yield* produce();
      } catch (err) {
        settle.reject(err);
        throw err;
      }
    })(),
    { objectMode: false },
  );
  return {
    stream: out,
    manifest,
    abort(err) {
      aborted = err;
      settle.reject(err);
      if (current instanceof Readable) current.destroy(err);
      out.destroy(err);
    },
  };
}

/**
 * The same package as buildPackage for documents already in memory, built in one go: no stream
 * stages per document, which on a small letter cost more CPU than the ZIP itself (docs/ingestion.md).
 */
export async function buildPackageInMemory(
  input: ManifestInput,
  documents: readonly DocumentData[],
  sign: (manifestJson: Buffer) => Promise<string>,
  opts: { compressionLevel?: number; now?: Date } = {},
): Promise<{ zip: Buffer; manifest: Manifest; manifestJson: Buffer }> {
  const mtime = opts.now ?? new Date();
  const level = opts.compressionLevel ?? 1;
  const zip = new ZipWriter(mtime);
  const parts = [zip.file('mimetype', Buffer.from(ASICE_MIMETYPE, 'ascii'), { compress: false })];
  const entries: DocumentEntry[] = [];
  const seen = new Set<string>();
  for (const doc of documents) {
    checkDocumentName(doc.name, seen);
    parts.push(zip.document(doc.name, doc.data, level));
    entries.push({ name: doc.name, mime: doc.mime, size: doc.data.length, sha256: createHash('sha256').update(doc.data).digest('hex') });
  }
  if (entries.length === 0) throw new PackageError('a package needs at least one document');
  const manifest: Manifest = { ...letterManifest(input), createdAt: mtime.toISOString(), documents: entries };
  const manifestJson = Buffer.from(JSON.stringify(manifest));
  // Stored: deflate would save a few hundred bytes of a small JSON for a zlib stream's set-up,
  // which cost more CPU per letter than the document's own deflate (docs/ingestion.md).
  parts.push(zip.file(MANIFEST_NAME, manifestJson, { compress: false }));
  parts.push(zip.file(MANIFEST_JWS_NAME, Buffer.from(await sign(manifestJson), 'ascii'), { compress: false }));
  parts.push(zip.finish());
  return { zip: Buffer.concat(parts), manifest, manifestJson };
}
