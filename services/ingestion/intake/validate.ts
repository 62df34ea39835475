import { Compile } from 'typebox/compile';
import { checkDocumentName, PackageError } from '../../../shared/crypto/asice.js';
import { Problem } from '../../../shared/errors/problem.js';
import { isValidPersonId } from '../../../shared/ids/person-id.js';
import { documentType } from '../documents.js';
import { ingestionProblems } from '../problems.js';
import { MessagePartSchema, type MessagePart } from '../routes/schemas.js';

const messageValidator = Compile(MessagePartSchema);

export interface DeclaredDocument {
  name: string;
  mime: string;
  main: boolean;
}

export interface ValidMessage {
  raw: unknown;
  part: MessagePart;
  availableAt: Date;
  documents: DeclaredDocument[];
}

/** Schema, then the rules a schema cannot say. Every failure is a 4xx. */
export function validateMessage(raw: unknown, opts: { maxAttachments: number; now: Date }): ValidMessage {
  if (!messageValidator.Check(raw)) {
    const errors = [...messageValidator.Errors(raw)].slice(0, 20).map((e) => ({ pointer: e.instancePath || '/', message: e.message }));
    throw new Problem(ingestionProblems.INVALID_MESSAGE, 'The message part does not match the schema', { errors });
  }
  const part = raw;
  if (!isValidPersonId(part.recipient.personId)) throw new Problem(ingestionProblems.INVALID_PERSON_ID, 'recipient.personId is not a valid fødselsnummer or D-number');
  const availableAt = part.availableAt ? new Date(part.availableAt) : opts.now;
  if (Number.isNaN(availableAt.getTime())) throw new Problem(ingestionProblems.INVALID_MESSAGE, 'availableAt is not a valid date-time');
  const docs = part.documents;
  if (docs.length > opts.maxAttachments + 1) {
    throw new Problem(ingestionProblems.TOO_MANY_DOCUMENTS, `At most one main document and ${opts.maxAttachments} attachments`, { limit: opts.maxAttachments });
  }
  const mains = docs.map((d, i) => (d.main ? i : -1)).filter((i) => i >= 0);
  if (mains.length > 1 || (mains.length === 1 && mains[0] !== 0)) {
    throw new Problem(ingestionProblems.INVALID_MESSAGE, 'Exactly one main document, listed first');
  }
  const seen = new Set<string>();
  for (const d of docs) {
    try {
      checkDocumentName(d.name, seen);
    } catch (err) {
      if (err instanceof PackageError) throw new Problem(ingestionProblems.INVALID_DOCUMENT_NAME, err.message.replace(/[\u0000-\u001f\u007f]/g, '?'));
      throw err;
    }
    documentType(d.mime);
  }
  return { raw, part, availableAt, documents: docs.map((d, i) => ({ name: d.name, mime: d.mime, main: i === 0 })) };
}
