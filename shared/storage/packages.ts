import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { pipeline, Readable, Transform } from 'node:stream';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { buildPackage, buildPackageInMemory, type DocumentData, type DocumentInput, type Manifest, type ManifestInput } from '../crypto/asice.js';
import { PostgresBlobStore } from './blob-store.js';
import type { StorageContext } from './context.js';

/**
 * Sealing: the package ZIP streams through AES-256-CBC (a fresh data key and IV per package)
 * into the blob store. Plaintext exists only in memory, a chunk at a time; the data key is
 * stored wrapped under the current KEK (id recorded).
 */
export interface SealInput {
  manifest: ManifestInput;
  documents: AsyncIterable<DocumentInput> | Iterable<DocumentInput>;
  /** Defaults to a random UUID. */
  packageId?: string;
  compressionLevel?: number;
  /**
   * When the package fits in one chunk, write nothing and return it as `pending`: the caller
   * (createDelivery, in the same transaction) writes package, chunk and delivery in one statement.
   * Only for a Postgres blob store on the caller's transaction.
   */
  deferWrite?: boolean;
}

/** A sealed package of one chunk not written yet (see SealInput.deferWrite). */
export interface PendingPackage {
  id: string;
  kekId: string;
  wrappedKey: Buffer;
  iv: Buffer;
  zipSize: number;
  ciphertextSize: number;
  data: Buffer;
}

export interface SealedPackage {
  packageId: string;
  manifest: Manifest;
  /** SHA-256 (hex) of manifest.json as stored in the package. */
  manifestSha256: string;
  zipSize: number;
  ciphertextSize: number;
  chunks: number;
  /** Set when the write was deferred (SealInput.deferWrite): the row and its one chunk, to be written. */
  pending?: PendingPackage;
}

/** The hub's detached JWS over the exact bytes of manifest.json (META-INF/manifest.jws). */
const signManifest = (ctx: StorageContext, json: Buffer): Promise<string> => ctx.hub.sign(json, { detached: true, cty: 'application/json' });

export const dataKeyContext = (packageId: string): string => `package:${packageId}`;

class Counter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err: null, chunk: Buffer) => void): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** The package row (SEALED) and its one chunk, as CTEs `p` and `c` to lead a larger statement. */
export const pendingPackageCtes = (p: PendingPackage) => sql`
  p as (
    insert into packages (id, status, kek_id, wrapped_key, iv, zip_size, ciphertext_size, chunk_count, sealed_at)
    values (${p.id}, 'SEALED', ${p.kekId}, ${p.wrappedKey}, ${p.iv}, ${p.zipSize}, ${p.ciphertextSize}, 1, now())
    returning id),
  c as (
    insert into package_chunks (package_id, seq, data) select id, 0, ${p.data} from p)`;

/** Writes a deferred package (row and chunk) in one statement. */
export async function writePendingPackage(db: Kysely<Database>, p: PendingPackage): Promise<void> {
  await sql`with ${pendingPackageCtes(p)} select 1`.execute(db);
}

/**
 * Seals a package. A package whose ciphertext fits in one chunk of the Postgres blob store (the
 * usual letter) is written by one statement at the end, the row already SEALED with its one
 * chunk: nothing is written before the documents have been read whole, so there is nothing to
 * clean up when one fails. Larger packages (or another blob store) insert the row first, stream
 * the chunks and mark the row SEALED.
 */
export async function sealPackage(ctx: StorageContext, input: SealInput): Promise<SealedPackage> {
  const packageId = input.packageId ?? randomUUID();
  const dataKey = randomBytes(32);
  const iv = randomBytes(16);
  const { kekId, wrapped } = ctx.keyring.wrap(dataKey, dataKeyContext(packageId));
  const oneChunk = ctx.blobs instanceof PostgresBlobStore && ctx.blobs.db === ctx.db ? ctx.blobs.chunkBytes : 0;

  let manifestJson: Buffer | undefined;
  const built = buildPackage(
    input.manifest,
    input.documents,
    (json) => {
      manifestJson = json;
      return signManifest(ctx, json);
    },
    { compressionLevel: input.compressionLevel },
  );
  const zipCounter = new Counter();
  const cipher = createCipheriv('aes-256-cbc', dataKey, iv);
  const encrypted = pipeline(built.stream, zipCounter, cipher, () => undefined);
  const sealed = (manifest: Manifest, stored: { size: number; chunks: number }): SealedPackage => ({
    packageId,
    manifest,
    manifestSha256: createHash('sha256').update(manifestJson!).digest('hex'),
    zipSize: zipCounter.bytes,
    ciphertextSize: stored.size,
    chunks: stored.chunks,
  });
  let rowWritten = false;
  try {
    // Up to one chunk of ciphertext first (the blob store buffers that much before its first
    // insert anyway).
    const source = encrypted[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const head: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    try {
      while (oneChunk > 0 && headBytes < oneChunk) {
        const r = await source.next();
        if (r.done) {
          ended = true;
          break;
        }
        head.push(r.value);
        headBytes += r.value.length;
      }
    } catch (err) {
      // A failing document (the cause) wins over the broken pipe it leaves behind.
      built.abort(err instanceof Error ? err : new Error(String(err)));
      await built.manifest;
      throw err;
    }
    if (ended) {
      const manifest = await built.manifest;
      const data = head.length === 1 ? head[0]! : Buffer.concat(head, headBytes);
      const pending: PendingPackage = { id: packageId, kekId, wrappedKey: wrapped, iv, zipSize: zipCounter.bytes, ciphertextSize: headBytes, data };
      if (input.deferWrite) return { ...sealed(manifest, { size: headBytes, chunks: 1 }), pending };
      await writePendingPackage(ctx.db, pending);
      return sealed(manifest, { size: headBytes, chunks: 1 });
    }
    await ctx.db.insertInto('packages').values({ id: packageId, kek_id: kekId, wrapped_key: wrapped, iv }).execute();
    rowWritten = true;
    const rest = (async function* () {
      yield* head;
      for (let r = await source.next(); !r.done; r = await source.next()) yield r.value;
    })();
    const putting = ctx.blobs.put(packageId, rest).catch((err: unknown) => {
      built.abort(err instanceof Error ? err : new Error(String(err)));
      throw err;
    });
    // Both settle before anything is cleaned up (no chunk insert still in flight), and a failing
    // document (the cause) wins over the broken pipe it leaves behind.
    const [put, built_] = await Promise.allSettled([putting, built.manifest]);
    if (built_.status === 'rejected') throw built_.reason;
    if (put.status === 'rejected') throw put.reason;
    const stored = put.value;
    await ctx.db
      .updateTable('packages')
      .set({ status: 'SEALED', zip_size: zipCounter.bytes, ciphertext_size: stored.size, chunk_count: stored.chunks, sealed_at: new Date() })
      .where('id', '=', packageId)
      .execute();
    return sealed(built_.value, stored);
  } catch (err) {
    encrypted.destroy();
    // Chunks go with the row (on delete cascade); nothing half-written stays behind.
    if (rowWritten) await ctx.db.deleteFrom('packages').where('id', '=', packageId).execute().catch(() => undefined);
    throw err;
  } finally {
    dataKey.fill(0);
  }
}

/**
 * sealPackage for documents already in memory (a small letter): the ZIP built in one go and
 * encrypted with two cipher calls, no stream stage per document. A package whose ciphertext
 * fits one chunk of the Postgres blob store is returned `pending` (deferWrite) or written by one
 * statement; a larger one (or another blob store) goes through sealPackage's streamed write.
 */
export async function sealPackageInMemory(ctx: StorageContext, input: Omit<SealInput, 'documents'> & { documents: readonly DocumentData[] }): Promise<SealedPackage> {
  const oneChunk = ctx.blobs instanceof PostgresBlobStore && ctx.blobs.db === ctx.db ? ctx.blobs.chunkBytes : 0;
  const total = input.documents.reduce((n, d) => n + d.data.length, 0);
  const streamed = () => sealPackage(ctx, { ...input, documents: input.documents.map((d) => ({ name: d.name, mime: d.mime, stream: Readable.from([d.data]) })) });
  if (total >= oneChunk) return streamed();
  const packageId = input.packageId ?? randomUUID();
  const built = await buildPackageInMemory(input.manifest, input.documents, (json) => signManifest(ctx, json), {
    compressionLevel: input.compressionLevel,
  });
  const dataKey = randomBytes(32);
  const iv = randomBytes(16);
  let data: Buffer;
  let pending: PendingPackage;
  try {
    const { kekId, wrapped } = ctx.keyring.wrap(dataKey, dataKeyContext(packageId));
    const cipher = createCipheriv('aes-256-cbc', dataKey, iv);
    data = Buffer.concat([cipher.update(built.zip), cipher.final()]);
    pending = { id: packageId, kekId, wrappedKey: wrapped, iv, zipSize: built.zip.length, ciphertextSize: data.length, data };
  } finally {
    dataKey.fill(0);
  }
  if (data.length > oneChunk) return streamed();
  const sealed: SealedPackage = {
    packageId,
    manifest: built.manifest,
    manifestSha256: createHash('sha256').update(built.manifestJson).digest('hex'),
    zipSize: pending.zipSize,
    ciphertextSize: data.length,
    chunks: 1,
  };
  if (input.deferWrite) return { ...sealed, pending };
  await writePendingPackage(ctx.db, pending);
  return sealed;
}

export class PackageGoneError extends Error {
  override name = 'PackageGoneError';
}

/** A sealed package's row with its data key unwrapped (the caller zeroes `dataKey` when done). */
export async function openPackageKey(ctx: StorageContext, packageId: string) {
  const row = await ctx.db.selectFrom('packages').selectAll().where('id', '=', packageId).executeTakeFirst();
  if (!row || row.status !== 'SEALED' || !row.wrapped_key) throw new PackageGoneError(`package ${packageId} is not available`);
  return { row, dataKey: ctx.keyring.unwrap(row.kek_id, row.wrapped_key, dataKeyContext(packageId)) };
}

/** The plaintext ZIP again, streamed (for re-verification and tests; providers get CMS). */
export async function* decryptPackage(ctx: StorageContext, packageId: string): AsyncIterable<Buffer> {
  const { row, dataKey } = await openPackageKey(ctx, packageId);
  const decipher = createDecipheriv('aes-256-cbc', dataKey, row.iv);
  dataKey.fill(0);
  for await (const piece of ctx.blobs.read(packageId, row.chunk_count ?? 0)) yield decipher.update(piece);
  yield decipher.final();
}
