import { createHash } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import type { Multipart } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { Compile } from 'typebox/compile';
import { Type } from 'typebox';
import { commonProblems, Problem, type ProblemBody } from '../../shared/errors/problem.js';
import { isValidIdempotencyKey } from './idempotency.js';
import { requireActiveSender, submitParsedLetter, validateMessage, type DeclaredDocument, type DocumentSource, type IntakeContext, type IntakeLog, type SubmitResult } from './intake.js';
import { checkDocumentData, DocumentGuard, type SizeBudget } from './documents.js';
import { standingQueue } from './intake/admit-hook.js';
import type { DocumentInput } from '../../shared/crypto/asice.js';
import type { SenderInfo } from '../../shared/registry/recipients.js';
import { ingestionProblems } from './problems.js';
import { mapLimit } from '../../shared/runtime/map-limit.js';

/**
 * POST /v1/messages/batch: many letters in one request. The body is multipart/form-data: for
 * each letter a field part named `letter` (JSON `{idempotencyKey, message}`, `message` exactly
 * as the `message` part of POST /v1/messages), then that letter's document file parts in their
 * declared order. The whole batch is read first (bounded by BATCH_MAX_LETTERS and
 * BATCH_MAX_BYTES), so a batch that is malformed as a whole is refused before any letter is
 * made; then each letter goes through the same submit path as a single send, with its own
 * Idempotency-Key semantics (replay, 422 reused, 409 in flight), and gets its own result.
 */

export const LetterPartSchema = Type.Object(
  {
    idempotencyKey: Type.String({ minLength: 1, maxLength: 255, description: 'This letter\'s Idempotency-Key (1-255 visible ASCII characters)' }),
    message: Type.Unknown({ description: 'The letter, exactly as the `message` part of POST /v1/messages' }),
  },
  { additionalProperties: false, description: 'One `letter` field part of POST /v1/messages/batch' },
);
const letterValidator = Compile(LetterPartSchema);

export interface BatchLetterInput {
  index: number;
  idempotencyKey: string;
  /** The message JSON as sent (validated by the submit path, like a single send's part). */
  message: unknown;
  documents: { filename: string; bytes: Buffer }[];
  bytes: number;
}

export interface LetterResult {
  index: number;
  idempotencyKey: string;
  status: number;
  replayed?: boolean;
  message?: Record<string, unknown>;
  problem?: ProblemBody;
}

/** Multipart parser failures of the batch as a whole: always the client's. */
function batchPartsError(err: unknown, limits: { letters: number }): Problem {
  if (err instanceof Problem) return err;
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'FST_FIELDS_LIMIT':
      return new Problem(ingestionProblems.BATCH_TOO_LARGE, `At most ${limits.letters} letters in one batch`, { maxLetters: limits.letters });
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
      return new Problem(ingestionProblems.BATCH_TOO_LARGE, 'Too many parts in one batch');
    case 'FST_REQ_FILE_TOO_LARGE':
      return new Problem(ingestionProblems.BATCH_TOO_LARGE, 'A document exceeds the size limit of a batch');
    default: {
      const message = err instanceof Error ? err.message : String(err);
      return new Problem(commonProblems.MALFORMED_BODY, `The multipart body could not be parsed: ${message.slice(0, 200)}`);
    }
  }
}

/** Reads the whole batch into letters (documents in memory, bounded by `maxBytes` in total). */
export async function parseBatch(request: FastifyRequest, opts: { maxLetters: number; maxBytes: number; maxFilesPerLetter: number }): Promise<BatchLetterInput[]> {
  if (!request.isMultipart()) throw new Problem(ingestionProblems.MULTIPART_REQUIRED, 'Send multipart/form-data: for each letter a `letter` part, then its documents');
  const letters: BatchLetterInput[] = [];
  const keys = new Map<string, number>();
  let total = 0;
  const parts = request.parts({
    limits: {
      fields: opts.maxLetters,
      files: opts.maxLetters * opts.maxFilesPerLetter,
      parts: opts.maxLetters * (opts.maxFilesPerLetter + 1) + 1,
      fileSize: opts.maxBytes + 1,
      fieldSize: 256 * 1024,
      headerPairs: 50,
    },
  }) as AsyncIterable<Multipart>;
  try {
    for await (const part of parts) {
      if (part.type === 'field') {
        if (part.fieldname !== 'letter') throw new Problem(ingestionProblems.INVALID_BATCH, `Unexpected field ${JSON.stringify(part.fieldname.slice(0, 50))}: each letter starts with a \`letter\` part`);
        if (part.valueTruncated) throw new Problem(ingestionProblems.INVALID_BATCH, `letter ${letters.length}: the letter part is too large`);
        let raw: unknown = part.value;
        if (typeof raw === 'string') {
          try {
            raw = JSON.parse(raw) as unknown;
          } catch {
            throw new Problem(ingestionProblems.INVALID_BATCH, `letter ${letters.length}: the letter part is not valid JSON`, { index: letters.length });
          }
        }
        if (!letterValidator.Check(raw)) {
          const errors = [...letterValidator.Errors(raw)].slice(0, 20).map((e) => ({ pointer: e.instancePath || '/', message: e.message }));
          throw new Problem(ingestionProblems.INVALID_BATCH, `letter ${letters.length}: the letter part must be {idempotencyKey, message}`, { index: letters.length, errors });
        }
        const key = raw.idempotencyKey;
        if (!isValidIdempotencyKey(key)) throw new Problem(ingestionProblems.INVALID_BATCH, `letter ${letters.length}: idempotencyKey must be 1-255 visible ASCII characters`, { index: letters.length });
        const earlier = keys.get(key);
        if (earlier !== undefined) throw new Problem(ingestionProblems.INVALID_BATCH, `letters ${earlier} and ${letters.length} have the same idempotencyKey`, { index: letters.length });
        keys.set(key, letters.length);
        letters.push({ index: letters.length, idempotencyKey: key, message: raw.message, documents: [], bytes: 0 });
        continue;
      }
      const current = letters[letters.length - 1];
      if (!current) {
        part.file.resume();
        throw new Problem(ingestionProblems.INVALID_BATCH, 'The first part must be a `letter` part; documents follow the letter they belong to');
      }
      const chunks: Buffer[] = [];
      for await (const chunk of part.file as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > opts.maxBytes) throw new Problem(ingestionProblems.BATCH_TOO_LARGE, `The documents of one batch may total at most ${opts.maxBytes} bytes`, { maxBytes: opts.maxBytes });
        chunks.push(chunk);
      }
      const bytes = Buffer.concat(chunks);
      current.documents.push({ filename: part.filename, bytes });
      current.bytes += bytes.length;
    }
  } catch (err) {
    throw batchPartsError(err, { letters: opts.maxLetters });
  }
  if (letters.length === 0) throw new Problem(ingestionProblems.INVALID_BATCH, 'The batch has no letters');
  return letters;
}

/**
 * A batch letter's documents, already in memory, as the intake's DocumentSource: the same order
 * and name rules as the file parts of a single send (each declared document's file next, with its
 * name as filename; nothing after the last), then the same guards (type, magic bytes, size) on
 * the way into the sealer, or only hashed when the key was seen before.
 */
export function bufferedDocuments(declared: readonly DeclaredDocument[], files: readonly { filename: string; bytes: Buffer }[]): DocumentSource {
  const fileOf = (i: number): Buffer => {
    const doc = declared[i]!;
    const f = files[i];
    if (!f) throw new Problem(ingestionProblems.MISSING_DOCUMENT, `No file part for document ${JSON.stringify(doc.name)}; send them in the declared order`, { document: doc.name });
    if (f.filename !== doc.name) {
      throw new Problem(ingestionProblems.MISSING_DOCUMENT, `Expected the file ${JSON.stringify(doc.name)} next (declared order), got ${JSON.stringify(f.filename)}`, { document: doc.name });
    }
    return f.bytes;
  };
  const noMore = () => {
    if (files.length > declared.length) throw new Problem(ingestionProblems.UNEXPECTED_PART, `Unexpected file ${JSON.stringify(files[declared.length]!.filename)} after the declared documents`);
  };
  return {
    async *guarded(budget: SizeBudget, failure: { err?: unknown }): AsyncGenerator<DocumentInput> {
      try {
        for (const [i, doc] of declared.entries()) {
          const bytes = fileOf(i);
          const guard = new DocumentGuard(doc.name, doc.mime, budget);
          guard.on('error', (err) => (failure.err ??= err));
          pipeline(Readable.from([bytes]), guard, (err) => {
            if (err) failure.err ??= err;
          });
          yield { name: doc.name, mime: doc.mime, stream: guard };
        }
        noMore();
      } catch (err) {
        failure.err ??= err;
        throw err;
      }
    },
    async whole(budget: SizeBudget) {
      const out = declared.map((doc, i) => checkDocumentData(doc.name, doc.mime, [fileOf(i)], budget));
      noMore();
      return out;
    },
    async hashed(budget: SizeBudget) {
      const out = declared.map((doc, i) => {
        const bytes = fileOf(i);
        budget.used += bytes.length;
        if (budget.used > budget.max) throw new Problem(ingestionProblems.LETTER_TOO_LARGE, `the documents exceed ${budget.max} bytes`);
        return { name: doc.name, mime: doc.mime, sha256: createHash('sha256').update(bytes).digest('hex') };
      });
      noMore();
      return out;
    },
  };
}

/**
 * One batch letter through the intake's own path for a parsed letter (submitParsedLetter: the
 * batched key/recipient lookup, the sealing, the group commit), so every check, the idempotency
 * rules and the commit are exactly those of POST /v1/messages.
 */
export async function submitBatchLetter(ctx: IntakeContext, org: string, sender: SenderInfo, letter: BatchLetterInput, log: IntakeLog): Promise<SubmitResult> {
  const now = ctx.deps.clock?.() ?? new Date();
  const valid = validateMessage(letter.message, { maxAttachments: ctx.deps.config.MESSAGE_MAX_ATTACHMENTS, now });
  return submitParsedLetter(ctx, { org, sender, key: letter.idempotencyKey, valid, documents: bufferedDocuments(valid.documents, letter.documents) }, { now, log });
}

/** The batch: sender check, parse, then every letter through the seam, a few at a time, each with its own result. */
export async function submitBatch(ctx: IntakeContext, request: FastifyRequest, org: string) {
  const config = ctx.deps.config;
  const sender = await requireActiveSender(ctx.deps, org);
  // A batch is refused while a queue stands (its own duration is not a letter's sojourn, so it
  // is not measured), and its upload takes one of the intake's upload slots while it is read.
  if (ctx.intake.admission.refusesNow()) {
    ctx.intake.shed('latency');
    throw standingQueue();
  }
  let release: () => void;
  try {
    release = ctx.intake.slots.take(org);
  } catch (err) {
    ctx.intake.shed((err as Problem).statusCode === 429 ? 'client' : 'uploads');
    throw err;
  }
  let letters: BatchLetterInput[];
  try {
    letters = await parseBatch(request, { maxLetters: config.BATCH_MAX_LETTERS, maxBytes: config.BATCH_MAX_BYTES, maxFilesPerLetter: config.MESSAGE_MAX_ATTACHMENTS + 1 });
  } finally {
    release();
  }
  const results = await mapLimit(letters, config.BATCH_CONCURRENCY, async (letter): Promise<LetterResult> => {
    const base = { index: letter.index, idempotencyKey: letter.idempotencyKey };
    try {
      const r = await submitBatchLetter(ctx, org, sender, letter, request.log);
      return { ...base, status: r.status, replayed: r.replayed, message: r.body };
    } catch (err) {
      if (err instanceof Problem) return { ...base, status: err.statusCode, problem: err.body() };
      request.log.error({ err, index: letter.index }, 'batch letter failed');
      const internal = new Problem(commonProblems.INTERNAL, 'This letter could not be processed; retry it with the same idempotencyKey');
      return { ...base, status: 500, problem: internal.body() };
    }
  });
  const accepted = results.filter((r) => r.status === 201).length;
  request.log.info({ letters: letters.length, accepted }, 'batch processed');
  return { letters: results.length, accepted, failed: results.length - accepted, results };
}
