import { Transform, type TransformCallback } from 'node:stream';
import type { DocumentData } from '../../shared/crypto/asice.js';
import { Problem } from '../../shared/errors/problem.js';
import { ownValue } from '../../shared/runtime/own-key.js';
import { ingestionProblems } from './problems.js';

/**
 * The document types a letter may carry, each with a check of the bytes against the declared
 * type. Checks read the first bytes (magic numbers) and, for text, every chunk (no NUL bytes);
 * they run in the stream on the way to the sealer, so nothing is buffered beyond a few bytes.
 */
type Sniff = (head: Buffer, mime: string) => boolean;

const startsWith = (magic: number[] | string) => {
  const m = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : Buffer.from(magic);
  return (head: Buffer) => head.length >= m.length && head.subarray(0, m.length).equals(m);
};

const ZIP = startsWith([0x50, 0x4b, 0x03, 0x04]);

/** Skips a UTF-8 byte order mark and whitespace; the first character must be `<`. */
const markup: Sniff = (head) => {
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (i < head.length && [0x20, 0x09, 0x0a, 0x0d].includes(head[i]!)) i++;
  return head[i] === 0x3c;
};

/** ODF: a ZIP whose first entry is an uncompressed `mimetype` holding the declared type. */
const odf: Sniff = (head, mime) => {
  if (!ZIP(head)) return false;
  if (head.subarray(30, 38).toString('latin1') !== 'mimetype') return true; // not first: still a ZIP, accept
  return head.subarray(38, 38 + mime.length).toString('latin1') === mime;
};

interface DocumentType {
  sniff: Sniff;
  /** Text types: no NUL byte anywhere. */
  text?: boolean;
}

export const DOCUMENT_TYPES: Readonly<Record<string, DocumentType>> = {
  'application/pdf': { sniff: startsWith('%PDF-') },
  'text/html': { sniff: markup, text: true },
  'text/plain': { sniff: () => true, text: true },
  'image/png': { sniff: startsWith([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  'image/jpeg': { sniff: startsWith([0xff, 0xd8, 0xff]) },
  'image/gif': { sniff: (h) => startsWith('GIF87a')(h) || startsWith('GIF89a')(h) },
  'image/tiff': { sniff: (h) => startsWith([0x49, 0x49, 0x2a, 0x00])(h) || startsWith([0x4d, 0x4d, 0x00, 0x2a])(h) },
  'application/vnd.oasis.opendocument.text': { sniff: odf },
  'application/vnd.oasis.opendocument.spreadsheet': { sniff: odf },
  'application/vnd.oasis.opendocument.presentation': { sniff: odf },
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': { sniff: ZIP },
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': { sniff: ZIP },
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': { sniff: ZIP },
  // EHF (Elektronisk handelsformat): UBL XML.
  'application/ehf+xml': { sniff: markup, text: true },
};

export const ALLOWED_MIME_TYPES = Object.keys(DOCUMENT_TYPES);

export function documentType(mime: string): DocumentType {
  // Own properties only: `__proto__` or `constructor` must not find Object.prototype's.
  const t = ownValue(DOCUMENT_TYPES, mime);
  if (!t) {
    throw new Problem(ingestionProblems.DOCUMENT_TYPE_NOT_ALLOWED, `${mime.slice(0, 100)} is not allowed`, { allowed: ALLOWED_MIME_TYPES });
  }
  return t;
}

const SNIFF_BYTES = 128;

/** Bytes counted over all documents of one letter. */
export interface SizeBudget {
  used: number;
  readonly max: number;
}

/**
 * The checks of one document, fed its bytes in order: its first bytes against the declared type,
 * text types for NUL bytes, and the letter's size budget. Each call answers the Problem that
 * fails the document, if any; shared by the streaming guard and the in-memory path so both fail
 * the same letter with the same problem.
 */
export class DocumentCheck {
  private head: Buffer[] = [];
  private headBytes = 0;
  private checked = false;
  private readonly type: DocumentType;

  constructor(
    private readonly name: string,
    private readonly mime: string,
    private readonly budget: SizeBudget,
  ) {
    this.type = documentType(mime);
  }

  private mismatch(why: string): Problem {
    return new Problem(ingestionProblems.DOCUMENT_CONTENT_MISMATCH, `document ${JSON.stringify(this.name)} ${why}`, { document: this.name });
  }

  /** The first bytes, once they are all in (then handed back to be passed on), or a problem. */
  private sniff(): Problem | Buffer {
    const head = Buffer.concat(this.head, this.headBytes);
    this.checked = true;
    this.head = [];
    if (head.length === 0) return this.mismatch('is empty');
    if (!this.type.sniff(head, this.mime)) return this.mismatch(`does not look like ${this.mime}`);
    return head;
  }

  /**
   * One chunk: a problem, or what may pass on now (`chunk`, the held first bytes once there are
   * enough to sniff, or nothing while they are still being gathered).
   */
  chunk(chunk: Buffer): Problem | Buffer | undefined {
    this.budget.used += chunk.length;
    if (this.budget.used > this.budget.max) return new Problem(ingestionProblems.LETTER_TOO_LARGE, `the documents exceed ${this.budget.max} bytes`, { limit: this.budget.max });
    if (this.type.text && chunk.includes(0)) return this.mismatch('is declared as text but contains NUL bytes');
    if (this.checked) return chunk;
    this.head.push(chunk);
    this.headBytes += chunk.length;
    return this.headBytes >= SNIFF_BYTES ? this.sniff() : undefined;
  }

  /** The end of the document: a problem, or the held first bytes of a short one. */
  end(): Problem | Buffer | undefined {
    return this.checked ? undefined : this.sniff();
  }
}

/** Passes a document through unchanged while it passes its DocumentCheck; fails with the Problem. */
export class DocumentGuard extends Transform {
  private readonly check: DocumentCheck;

  constructor(name: string, mime: string, budget: SizeBudget) {
    super();
    this.check = new DocumentCheck(name, mime, budget);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.check.chunk(chunk);
    if (out instanceof Problem) cb(out);
    else cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    const out = this.check.end();
    if (out instanceof Problem) return cb(out);
    if (out) this.push(out);
    cb();
  }
}

/** Checks a document already in memory (as DocumentGuard would while streaming it). */
export function checkDocumentData(name: string, mime: string, chunks: readonly Buffer[], budget: SizeBudget): DocumentData {
  const check = new DocumentCheck(name, mime, budget);
  for (const chunk of chunks) {
    const out = check.chunk(chunk);
    if (out instanceof Problem) throw out;
  }
  const out = check.end();
  if (out instanceof Problem) throw out;
  return { name, mime, data: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
}
