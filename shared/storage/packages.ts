import { createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { pipeline, Transform } from 'node:stream';
import { buildPackage, type DocumentInput, type Manifest, type ManifestInput } from '../crypto/asice.js';
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
}

export interface SealedPackage {
  packageId: string;
  manifest: Manifest;
  /** SHA-256 (hex) of manifest.json as stored in the package. */
  manifestSha256: string;
  zipSize: number;
  ciphertextSize: number;
  chunks: number;
}

export const dataKeyContext = (packageId: string): string => `package:${packageId}`;

class Counter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (err: null, chunk: Buffer) => void): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

export async function sealPackage(ctx: StorageContext, input: SealInput): Promise<SealedPackage> {
  const packageId = input.packageId ?? randomUUID();
  const dataKey = randomBytes(32);
  const iv = randomBytes(16);
  const { kekId, wrapped } = ctx.keyring.wrap(dataKey, dataKeyContext(packageId));
  await ctx.db.insertInto('packages').values({ id: packageId, kek_id: kekId, wrapped_key: wrapped, iv }).execute();

  let manifestJson: Buffer | undefined;
  const built = buildPackage(
    input.manifest,
    input.documents,
    (json) => {
      manifestJson = json;
      return ctx.hub.sign(json, { detached: true, cty: 'application/json' });
    },
    { compressionLevel: input.compressionLevel },
  );
  const zipCounter = new Counter();
  const cipher = createCipheriv('aes-256-cbc', dataKey, iv);
  const encrypted = pipeline(built.stream, zipCounter, cipher, () => undefined);
  try {
    const putting = ctx.blobs.put(packageId, encrypted).catch((err: unknown) => {
      built.abort(err instanceof Error ? err : new Error(String(err)));
      throw err;
    });
    // Both settle before anything is cleaned up (no chunk insert still in flight), and a failing
    // document (the cause) wins over the broken pipe it leaves behind.
    const [put, built_] = await Promise.allSettled([putting, built.manifest]);
    if (built_.status === 'rejected') throw built_.reason;
    if (put.status === 'rejected') throw put.reason;
    const stored = put.value;
    const manifest = built_.value;
    await ctx.db
      .updateTable('packages')
      .set({ status: 'SEALED', zip_size: zipCounter.bytes, ciphertext_size: stored.size, chunk_count: stored.chunks, sealed_at: new Date() })
      .where('id', '=', packageId)
      .execute();
    return {
      packageId,
      manifest,
      manifestSha256: createHash('sha256').update(manifestJson!).digest('hex'),
      zipSize: zipCounter.bytes,
      ciphertextSize: stored.size,
      chunks: stored.chunks,
    };
  } catch (err) {
    encrypted.destroy();
    // Chunks go with the row (on delete cascade); nothing half-written stays behind.
    await ctx.db.deleteFrom('packages').where('id', '=', packageId).execute().catch(() => undefined);
    throw err;
  } finally {
    dataKey.fill(0);
  }
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
