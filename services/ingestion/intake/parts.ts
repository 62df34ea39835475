import { createHash } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { findBadValue } from '../../../shared/app/input-guard.js';
import type { Config } from '../../../shared/config/config.js';
import type { DocumentData, DocumentInput } from '../../../shared/crypto/asice.js';
import { commonProblems, Problem } from '../../../shared/errors/problem.js';
import { checkDocumentData, DocumentGuard, type SizeBudget } from '../documents.js';
import { ingestionProblems } from '../problems.js';
import type { DeclaredDocument } from './validate.js';
import type { UploadWatchdog } from './uploads.js';

/** The multipart parser's limits, for streamed letters (@fastify/multipart) and those read whole alike. */
export function multipartLimits(config: Pick<Config, 'MESSAGE_MAX_BYTES' | 'MESSAGE_MAX_ATTACHMENTS'>) {
  return {
    // The letter's total is enforced while reading (DocumentGuard, checkDocumentData); one byte
    // more here so that check, with its precise problem, always fires first.
    fileSize: config.MESSAGE_MAX_BYTES + 1,
    files: config.MESSAGE_MAX_ATTACHMENTS + 1,
    fields: 1,
    parts: config.MESSAGE_MAX_ATTACHMENTS + 3,
    fieldSize: MAX_MESSAGE_PART,
    headerPairs: 50,
  };
}

/** Errors of the multipart parser (busboy, @fastify/multipart) as problems: all are the client's. */
export function partsError(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'FST_INVALID_JSON_FIELD_ERROR':
      return new Problem(ingestionProblems.INVALID_MESSAGE, 'The message part is not valid JSON');
    case 'FST_PROTO_VIOLATION':
    case 'FST_FIELDS_LIMIT':
      return new Problem(ingestionProblems.UNEXPECTED_PART, message);
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
      return new Problem(ingestionProblems.TOO_MANY_DOCUMENTS, 'Too many parts');
    case 'FST_REQ_FILE_TOO_LARGE':
      return new Problem(ingestionProblems.LETTER_TOO_LARGE, 'A document exceeds the size limit');
    default:
      return new Problem(commonProblems.MALFORMED_BODY, `The multipart body could not be parsed: ${message.slice(0, 200)}`);
  }
}

/** A multipart field (the `message` part, sent without a filename). */
export interface FieldPart {
  type: 'field';
  fieldname: string;
  /** The value, parsed when the part was sent as application/json. */
  value: unknown;
  valueTruncated: boolean;
}

/** A multipart file part (a document). */
export interface FilePart {
  type: 'file';
  fieldname: string;
  filename: string;
  mimetype: string;
  file: Readable;
  /** Its bytes, when the body was read whole (intake/whole-body.ts). */
  chunks?: readonly Buffer[];
}

export type Part = FieldPart | FilePart;

/** A request's parts, one at a time, in order, under the upload's watchdog. */
export interface PartSource {
  readonly watchdog: UploadWatchdog;
  /** The whole body is in memory (intake/whole-body.ts), so the documents may be read whole. */
  readonly inMemory: boolean;
  next(): Promise<Part | undefined>;
}

/** Lets a part go unread (a refused one): a streamed part must still drain for the parser to go on. */
function discard(part: Part | undefined): void {
  if (part?.type === 'file' && part.chunks === undefined) part.file.resume();
}

/** The parts of a streamed request (@fastify/multipart), one at a time, under the upload's watchdog. */
export class Parts implements PartSource {
  readonly inMemory = false;
  private readonly it: AsyncIterator<Part>;
  constructor(
    request: FastifyRequest,
    readonly watchdog: UploadWatchdog,
  ) {
    this.it = (request.parts() as AsyncIterable<Part>)[Symbol.asyncIterator]();
  }
  async next(): Promise<Part | undefined> {
    try {
      const pending = this.it.next();
      this.watchdog.start(); // the first next() pipes the request into the parser
      const r = await this.watchdog.race(pending);
      if (r.done) return undefined;
      if (r.value.type === 'file') this.watchdog.reading(r.value.file);
      return r.value;
    } catch (err) {
      throw partsError(err);
    }
  }
}

async function readLimited(stream: Readable, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) throw new Problem(ingestionProblems.INVALID_MESSAGE, `The message part is larger than ${max} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

export const MAX_MESSAGE_PART = 256 * 1024;

export async function readMessagePart(parts: PartSource): Promise<unknown> {
  const part = await parts.next();
  if (!part || part.fieldname !== 'message') {
    discard(part);
    throw new Problem(ingestionProblems.MESSAGE_PART_MISSING, 'Send the JSON `message` part first, then one file part per document');
  }
  let raw: unknown;
  if (part.type === 'file') raw = (await readLimited(part.file, MAX_MESSAGE_PART).catch((err: unknown) => Promise.reject(partsError(err)))).toString('utf8');
  else if (part.valueTruncated) throw new Problem(ingestionProblems.INVALID_MESSAGE, 'The message part is too large');
  else raw = part.value;
  let value: unknown = raw; // parsed by the multipart plugin when sent with Content-Type: application/json
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw) as unknown;
    } catch {
      throw new Problem(ingestionProblems.INVALID_MESSAGE, 'The message part is not valid JSON');
    }
  }
  const bad = findBadValue(value);
  if (bad) {
    throw new Problem(ingestionProblems.INVALID_MESSAGE, `message${bad.pointer} ${bad.message}`, { errors: [{ in: 'message', pointer: bad.pointer || '/', message: bad.message }] });
  }
  return value;
}

/** The form field name of every file part (one part per declared document, repeated). */
export const DOCUMENT_FIELD = 'document';

/** The next part must be the file of `doc`. */
async function documentPart(parts: PartSource, doc: DeclaredDocument): Promise<FilePart> {
  const part = await parts.next();
  if (!part) throw new Problem(ingestionProblems.MISSING_DOCUMENT, `No file part for document ${JSON.stringify(doc.name)}; send them in the declared order`, { document: doc.name });
  if (part.type !== 'file') throw new Problem(ingestionProblems.UNEXPECTED_PART, `Expected the file of ${JSON.stringify(doc.name)}, got field ${JSON.stringify(part.fieldname)}`);
  if (part.fieldname !== DOCUMENT_FIELD) {
    discard(part);
    throw new Problem(ingestionProblems.UNEXPECTED_PART, `File parts are named ${JSON.stringify(DOCUMENT_FIELD)}, got ${JSON.stringify(part.fieldname.slice(0, 100))}`);
  }
  if (part.filename !== doc.name) {
    discard(part);
    throw new Problem(ingestionProblems.MISSING_DOCUMENT, `Expected the file ${JSON.stringify(doc.name)} next (declared order), got ${JSON.stringify(part.filename)}`, { document: doc.name });
  }
  return part;
}

export async function noMoreParts(parts: PartSource): Promise<void> {
  const extra = await parts.next();
  if (extra) {
    discard(extra);
    throw new Problem(ingestionProblems.UNEXPECTED_PART, `Unexpected part ${JSON.stringify(extra.fieldname)} after the declared documents`);
  }
}

/** A letter's documents as they arrive: streamed through their checks into the sealer, or only hashed (a repeated key). */
export interface DocumentSource {
  /** The documents in declared order, each through its guard; the first failure is kept in `failure`. */
  guarded(budget: SizeBudget, failure: { err?: unknown }): AsyncIterable<DocumentInput>;
  /** Each document's name, type and SHA-256, read and hashed, never stored. */
  hashed(budget: SizeBudget): Promise<{ name: string; mime: string; sha256: string }[]>;
  /**
   * The documents read whole into memory through the same checks as `guarded`, for a letter
   * small enough to seal in one go (see submitParsedLetter); absent where a letter may be large.
   */
  whole?(budget: SizeBudget): Promise<DocumentData[]>;
}

/** A file part's bytes, as they arrived. */
async function chunksOf(part: FilePart): Promise<readonly Buffer[]> {
  if (part.chunks) return part.chunks;
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of part.file as AsyncIterable<Buffer>) chunks.push(chunk);
  } catch (err) {
    throw partsError(err);
  }
  return chunks;
}

/**
 * The documents of a multipart request (the parts after the message part), read whole when the
 * body is in memory.
 */
export function multipartDocuments(parts: PartSource, docs: readonly DeclaredDocument[]): DocumentSource {
  const whole = async (budget: SizeBudget): Promise<DocumentData[]> => {
    const out: DocumentData[] = [];
    for (const doc of docs) out.push(checkDocumentData(doc.name, doc.mime, await chunksOf(await documentPart(parts, doc)), budget));
    await noMoreParts(parts);
    return out;
  };
  return {
    ...(parts.inMemory ? { whole } : {}),
    async *guarded(budget, failure) {
      try {
        for (const doc of docs) {
          const part = await documentPart(parts, doc);
          const guard = new DocumentGuard(doc.name, doc.mime, budget);
          guard.on('error', (err) => (failure.err ??= err));
          parts.watchdog.reading(guard); // the sealer reads the guard: a timeout must fail it, not only the part under it
          pipeline(part.file, guard, (err) => {
            if (err) failure.err ??= err;
          });
          yield { name: doc.name, mime: doc.mime, stream: guard };
        }
        await noMoreParts(parts);
      } catch (err) {
        failure.err ??= err;
        throw err;
      }
    },
    async hashed(budget) {
      const out: { name: string; mime: string; sha256: string }[] = [];
      for (const doc of docs) {
        const part = await documentPart(parts, doc);
        const hash = createHash('sha256');
        try {
          for await (const chunk of part.file as AsyncIterable<Buffer>) {
            budget.used += chunk.length;
            if (budget.used > budget.max) throw new Problem(ingestionProblems.LETTER_TOO_LARGE, `the documents exceed ${budget.max} bytes`);
            hash.update(chunk);
          }
        } catch (err) {
          throw partsError(err);
        }
        out.push({ name: doc.name, mime: doc.mime, sha256: hash.digest('hex') });
      }
      await noMoreParts(parts);
      return out;
    },
  };
}
