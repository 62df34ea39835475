import { Transform, type TransformCallback } from 'node:stream';
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
 * Passes a document through unchanged while checking it: its first bytes against the declared
 * type, text types for NUL bytes, and the letter's size budget. Fails with a Problem.
 */
export class DocumentGuard extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private checked = false;
  private readonly type: DocumentType;

  constructor(
    private readonly name: string,
    private readonly mime: string,
    private readonly budget: SizeBudget,
  ) {
    super();
    this.type = documentType(mime);
  }

  private mismatch(why: string): Problem {
    return new Problem(ingestionProblems.DOCUMENT_CONTENT_MISMATCH, `document ${JSON.stringify(this.name)} ${why}`, { document: this.name });
  }

  private check(): Problem | undefined {
    const head = Buffer.concat(this.head, this.headBytes);
    this.checked = true;
    this.head = [];
    if (head.length === 0) return this.mismatch('is empty');
    if (!this.type.sniff(head, this.mime)) return this.mismatch(`does not look like ${this.mime}`);
    this.push(head);
    return undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.budget.used += chunk.length;
    if (this.budget.used > this.budget.max) {
      cb(new Problem(ingestionProblems.LETTER_TOO_LARGE, `the documents exceed ${this.budget.max} bytes`, { limit: this.budget.max }));
      return;
    }
    if (this.type.text && chunk.includes(0)) {
      cb(this.mismatch('is declared as text but contains NUL bytes'));
      return;
    }
    if (this.checked) {
      cb(null, chunk);
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    cb(this.headBytes >= SNIFF_BYTES ? this.check() : undefined);
  }

  override _flush(cb: TransformCallback): void {
    cb(this.checked ? undefined : this.check());
  }
}
