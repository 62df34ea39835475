import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';

/**
 * Where package ciphertext lives. Postgres (`package_chunks`) by default; an S3-compatible store
 * can implement the same interface (multipart upload for `put`, ranged GETs for `read`).
 * Both directions stream: nothing holds a whole package in memory.
 */
export interface BlobStore {
  /** Stores `source` under `id` (the package row exists already); returns bytes and pieces written. */
  put(id: string, source: AsyncIterable<Buffer>): Promise<{ size: number; chunks: number }>;
  /** The bytes in order; `chunks` is the count `put` returned, so small blobs read in one query. `from` skips pieces already read. */
  read(id: string, chunks: number, from?: number): AsyncIterable<Buffer>;
  delete(id: string): Promise<void>;
}

export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export class PostgresBlobStore implements BlobStore {
  constructor(
    readonly db: Kysely<Database>,
    readonly chunkBytes = DEFAULT_CHUNK_BYTES,
    /** Chunks fetched per query while reading (bounded memory: readAhead x chunkBytes). */
    private readonly readAhead = 4,
    /** Chunk inserts allowed in flight beside the one being produced. */
    private readonly writeAhead = 1,
  ) {}

  async put(id: string, source: AsyncIterable<Buffer>): Promise<{ size: number; chunks: number }> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let seq = 0;
    let size = 0;
    // One insert may run while the next chunk is being produced: encryption overlaps the I/O.
    const inflight: Promise<unknown>[] = [];
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const insert = this.db.insertInto('package_chunks').values({ package_id: id, seq, data }).execute();
      insert.catch(() => undefined); // awaited below; never unhandled
      inflight.push(insert);
      seq += 1;
      if (inflight.length > this.writeAhead) await inflight.shift();
    };
    try {
      for await (const piece of source) {
        pending.push(piece);
        pendingBytes += piece.length;
        size += piece.length;
        if (pendingBytes >= this.chunkBytes) await flush();
      }
      await flush();
      await Promise.all(inflight);
    } catch (err) {
      // Nothing may still be writing when the caller cleans up.
      await Promise.allSettled(inflight);
      throw err;
    }
    return { size, chunks: seq };
  }

  async *read(id: string, chunks: number, start = 0): AsyncIterable<Buffer> {
    for (let from = start; from < chunks; from += this.readAhead) {
      const rows = await this.db
        .selectFrom('package_chunks')
        .select(['seq', 'data'])
        .where('package_id', '=', id)
        .where('seq', '>=', from)
        .where('seq', '<', from + this.readAhead)
        .orderBy('seq')
        .execute();
      const expected = Math.min(this.readAhead, chunks - from);
      if (rows.length !== expected) throw new Error(`package ${id} is missing chunks ${from}..${from + expected - 1}`);
      for (const r of rows) yield r.data;
    }
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('package_chunks').where('package_id', '=', id).execute();
  }
}
