import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Busboy, type BusboyConfig } from '@fastify/busboy';
import secureJson from 'secure-json-parse';
import { partsError, type FilePart, type Part, type PartSource } from './parts.js';
import type { UploadWatchdog } from './uploads.js';

/**
 * A small letter's body read whole, then cut into its parts by one pass of busboy over the
 * buffer (the parser @fastify/multipart drives for a streamed letter). Around busboy the
 * streamed way adds, per part, a stream, an async-iterator step and several promise turns, and
 * per letter the watchdog's races: on a 10 KB letter about a tenth of the intake's CPU
 * (docs/ingestion.md, Performance). Busboy's own parse stays, the maintained parser.
 *
 * The parts, their order and the errors come out as @fastify/multipart gives them (the same
 * busboy options, JSON-typed fields parsed the same way, errors delivered where the plugin
 * delivers them): tests/services/ingestion/whole-body.test.ts compares both ways over 140
 * bodies, and the malformed-letter suite runs both ways.
 */

/** The multipart limits, shared by the plugin (streamed letters) and this parser. */
export type MultipartLimits = NonNullable<BusboyConfig['limits']>;

/** The plugin's limit errors (codes and messages), which partsError maps to problems. */
const LIMITS = { partsLimit: ['FST_PARTS_LIMIT', 'reach parts limit'], filesLimit: ['FST_FILES_LIMIT', 'reach files limit'], fieldsLimit: ['FST_FIELDS_LIMIT', 'reach fields limit'] } as const;
const codedError = (code: string, message: string): Error => Object.assign(new Error(message), { code });
const notJson = () => codedError('FST_INVALID_JSON_FIELD_ERROR', 'a request field is not a valid JSON as declared by its Content-Type');
const protoName = () => codedError('FST_PROTO_VIOLATION', 'prototype property is not allowed as field name');

/**
 * The body, whole, under the upload's watchdog (idle and total time). Node's HTTP parser delivers
 * at most the declared Content-Length, which the caller has bounded.
 */
export async function readWholeBody(raw: IncomingMessage, watchdog: UploadWatchdog): Promise<Buffer> {
  const body = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => chunks.push(chunk);
    const onEnd = () => finish(undefined);
    const onClose = () => finish(codedError('FST_PREMATURE_CLOSE', 'Premature close'));
    const onError = (err: Error) => finish(err);
    function finish(err: Error | undefined) {
      raw.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onError);
      if (err) reject(err);
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    }
    raw.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onError);
  });
  watchdog.start();
  // A client that goes away mid-body is the body's fault (400), as on the streamed way.
  return watchdog.race(body).catch((err: unknown) => Promise.reject(partsError(err)));
}

interface Collected {
  parts: Part[];
  /** What ends the parts: a parser or limit error, or nothing. */
  end: Error | undefined;
}

/**
 * Every part of `body`, in order, with the error that ends them: a parser error, else a limit,
 * else the last refused part (the order @fastify/multipart delivers them in).
 */
async function collect(body: Buffer, headers: IncomingMessage['headers'], limits: MultipartLimits): Promise<Collected> {
  const parts: Part[] = [];
  const files: Promise<unknown>[] = [];
  let lastFile: ReturnType<typeof bufferedFile> | undefined;
  let lastError: Error | undefined;
  let parserError: Error | undefined;
  let limited: Error | undefined;
  let bb: InstanceType<typeof Busboy>;
  try {
    bb = new Busboy({ headers: headers as BusboyConfig['headers'], limits });
  } catch (err) {
    return { parts, end: err as Error };
  }
  for (const [event, [code, message]] of Object.entries(LIMITS)) {
    bb.on(event, () => {
      lastError = codedError(code, message);
      limited ??= lastError;
    });
  }
  bb.on('field', (name: string, value: string, _nameTruncated: boolean, valueTruncated: boolean, _encoding: string, mimetype: string) => {
    if (parserError) return; // busboy still ends a field the body cut short; the plugin delivers the error first
    if (name in Object.prototype) return void (lastError = protoName());
    let parsed: unknown = value;
    if (mimetype.startsWith('application/json')) {
      if (valueTruncated) return void (lastError = notJson());
      try {
        parsed = secureJson.parse(value);
      } catch {
        return void (lastError = notJson());
      }
    }
    parts.push({ type: 'field', fieldname: name, value: parsed, valueTruncated });
  });
  bb.on('file', (name: string, stream: Readable, filename: string, _encoding: string, mimetype: string) => {
    const part = bufferedFile(name, filename, mimetype);
    lastFile = part;
    stream.on('data', (chunk: Buffer) => part.add(chunk));
    stream.on('limit', () => (lastError = codedError('FST_REQ_FILE_TOO_LARGE', 'request file too large')));
    stream.on('error', (err: Error) => {
      // Its reader meets the error, as it would reading the streamed part.
      part.fail(err);
      if (err.message.includes('terminated early')) lastError = err;
    });
    files.push(finished(stream).catch(() => undefined));
    if (name in Object.prototype) return void (lastError = protoName());
    parts.push(part.part);
  });
  const parsed = new Promise<void>((resolve) => {
    bb.on('finish', resolve).on('close', resolve);
    bb.on('error', (err: Error) => {
      // An empty body is an empty form, not truncated multipart data (as the plugin has it).
      if (!(body.length === 0 && err.message === 'Unexpected end of multipart data')) parserError ??= err;
      resolve();
    });
  });
  bb.end(body);
  await parsed;
  await Promise.all(files);
  // The plugin destroys the last file part it handed out with a parser error, finished or not:
  // reading it fails with that error.
  if (parserError) lastFile?.fail(parserError);
  return { parts, end: parserError ?? limited ?? lastError };
}

/**
 * A file part whose bytes are in memory; `file` streams them for a reader that wants a stream.
 * A part the body cut short has no `chunks`, and its stream fails after its bytes, as the
 * streamed part would.
 */
function bufferedFile(fieldname: string, filename: string, mimetype: string) {
  const chunks: Buffer[] = [];
  let error: Error | undefined;
  let file: Readable | undefined;
  const part: FilePart = {
    type: 'file',
    fieldname,
    filename,
    mimetype,
    chunks,
    get file() {
      return (file ??= Readable.from(
        (function* () {
          yield* chunks;
          if (error) throw error;
        })(),
        { objectMode: false },
      ));
    },
  };
  return {
    part,
    add: (chunk: Buffer) => chunks.push(chunk),
    fail(err: Error) {
      error = err;
      delete part.chunks;
    },
  };
}

/** The parts of a body read whole (see readWholeBody), one at a time like the plugin's. */
export class WholeBodyParts implements PartSource {
  readonly inMemory = true;
  private readonly collected: Promise<Collected>;
  private at = 0;
  constructor(
    body: Buffer,
    headers: IncomingMessage['headers'],
    limits: MultipartLimits,
    readonly watchdog: UploadWatchdog,
  ) {
    this.collected = collect(body, headers, limits);
  }
  async next(): Promise<Part | undefined> {
    const { parts, end } = await this.collected;
    if (this.at < parts.length) return parts[this.at++];
    if (end) throw partsError(end);
    return undefined;
  }
}
