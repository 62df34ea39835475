import { Readable } from 'node:stream';
import type { Multipart } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { Compile } from 'typebox/compile';
import { Type } from 'typebox';
import { commonProblems, Problem, type ProblemBody } from '../../shared/errors/problem.js';
import { isValidIdempotencyKey } from './idempotency.js';
import { requireActiveSender, submitLetter, type IntakeContext, type SubmitResult } from './intake.js';
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
 * THE SEAM: submit one parsed letter through the single-send path. Today that is submitLetter
 * fed a request-shaped view of the letter (its key as the Idempotency-Key header, its message as
 * the `message` part, its buffered documents as file parts), so every check, the idempotency
 * rules and the commit are exactly those of POST /v1/messages. When the intake gets a batching
 * submit function, only this function changes.
 */
export async function submitBatchLetter(ctx: IntakeContext, request: FastifyRequest, org: string, letter: BatchLetterInput): Promise<SubmitResult> {
  const message = JSON.stringify(letter.message ?? null);
  async function* parts(): AsyncGenerator<Multipart> {
    yield { type: 'field', fieldname: 'message', value: message, valueTruncated: false, fieldnameTruncated: false } as unknown as Multipart;
    for (const d of letter.documents) {
      yield { type: 'file', fieldname: 'document', filename: d.filename, file: Readable.from([d.bytes]) } as unknown as Multipart;
    }
  }
  const view = {
    headers: { 'idempotency-key': letter.idempotencyKey, 'content-length': String(message.length + letter.bytes + 200 * (letter.documents.length + 1)) },
    isMultipart: () => true,
    parts,
    log: request.log,
  } as unknown as FastifyRequest;
  return submitLetter(ctx, view, org);
}

/** The batch: sender check, parse, then every letter through the seam, a few at a time, each with its own result. */
export async function submitBatch(ctx: IntakeContext, request: FastifyRequest, org: string) {
  const config = ctx.deps.config;
  await requireActiveSender(ctx.deps, org);
  const letters = await parseBatch(request, { maxLetters: config.BATCH_MAX_LETTERS, maxBytes: config.BATCH_MAX_BYTES, maxFilesPerLetter: config.MESSAGE_MAX_ATTACHMENTS + 1 });
  const results = await mapLimit(letters, config.BATCH_CONCURRENCY, async (letter): Promise<LetterResult> => {
    const base = { index: letter.index, idempotencyKey: letter.idempotencyKey };
    try {
      const r = await submitBatchLetter(ctx, request, org, letter);
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
