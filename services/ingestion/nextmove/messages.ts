import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database } from '../../../shared/db/database.js';
import type { NextMoveDocumentsTable } from '../../../shared/db/tables/nextmove.js';
import { checkDocumentName, PackageError } from '../../../shared/crypto/asice.js';
import { canonicalJson } from '../../../shared/evidence/chain.js';
import { Problem } from '../../../shared/errors/problem.js';
import { checkDocumentData, DocumentGuard, type SizeBudget } from '../documents.js';
import { requireActiveSender, submitParsedLetter, validateMessage, type DocumentSource, type IntakeContext, type SubmitResult } from '../intake.js';
import { ingestionProblems } from '../problems.js';
import { limitOffset, orderBy } from './paging.js';
import type { ParsedSbd, SbdBody } from './sbd.js';
import { recordCreated, syncStatuses } from './statuses.js';

/**
 * Outgoing next-move messages: created from an SBD (OPPRETTET), documents uploaded one request
 * at a time, then sent, which hands the letter to the same intake as POST /v1/messages
 * (submitParsedLetter: routing, sealing, delivery, alerts, evidence).
 *
 * Documents are held between requests encrypted: each with AES-256-GCM under the message's own
 * data key (random, stored wrapped under the KEK with the message id bound in), the message id,
 * position, name and type as associated data. They are deleted once the letter is sealed.
 */

export const dataKeyContext = (messageId: string) => `nextmove-message:${messageId}`;
const aad = (messageId: string, seq: number, filename: string, mime: string) => Buffer.from(`${messageId}\n${seq}\n${filename}\n${mime}`);

/** The request's fingerprint for idempotency: the SBD as sent, without its creation time. */
export function sbdHash(body: SbdBody): string {
  const ident = { ...body.standardBusinessDocumentHeader.documentIdentification };
  delete ident.creationDateAndTime;
  return createHash('sha256')
    .update(canonicalJson({ ...body, standardBusinessDocumentHeader: { ...body.standardBusinessDocumentHeader, documentIdentification: ident } }))
    .digest('hex');
}

export interface NextMoveRow {
  message_id: string;
  conv_id: string;
  sender_orgnr: string;
  conversation_id: string;
  receiver: string;
  process: string;
  type: 'digital' | 'print';
  sbd: SbdBody;
  sbd_sha256: string;
  state: 'OPPRETTET' | 'SENDING' | 'SENDT';
  kek_id: string;
  wrapped_key: Buffer;
  finished: boolean;
  created_at: Date;
  sent_at: Date | null;
}

const notFound = (messageId: string) => new Problem(ingestionProblems.MESSAGE_NOT_FOUND, `Message with messageId = ${messageId} was not found`);
const alreadySent = (messageId: string) =>
  new Problem(ingestionProblems.NEXTMOVE_ALREADY_SENT, `Message with messageId = ${messageId} has been sent; see /api/statuses/${messageId}`);
const idConflict = (messageId: string) => new Problem(ingestionProblems.NEXTMOVE_MESSAGE_ID_CONFLICT, `messageId ${messageId} is already used for a different message`);

/**
 * Creates the message, or (same messageId, same SBD) answers the stored one again; the same
 * messageId with a different SBD, or one used by another sender or a native letter, is refused.
 */
export async function createMessage(ctx: IntakeContext, org: string, parsed: ParsedSbd, hash: string): Promise<{ row: NextMoveRow; created: boolean }> {
  await requireActiveSender(ctx.deps, org);
  const db = ctx.deps.db.kysely;
  const { kekId, wrapped } = ctx.storage.keyring.wrap(randomBytes(32), dataKeyContext(parsed.messageId));
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtextextended(${`nextmove:${parsed.messageId}`}, 0))`.execute(trx);
    const existing = await sql<NextMoveRow>`select * from nextmove_messages where message_id = ${parsed.messageId}::uuid`.execute(trx);
    const row = existing.rows[0];
    if (row) {
      if (row.sender_orgnr !== org || row.sbd_sha256 !== hash) throw idConflict(parsed.messageId);
      return { row, created: false };
    }
    if (await trx.selectFrom('messages').select('id').where('id', '=', parsed.messageId).executeTakeFirst()) throw idConflict(parsed.messageId);
    const { rows } = await sql<NextMoveRow>`
      insert into nextmove_messages (message_id, sender_orgnr, conversation_id, receiver, process, type, sbd, sbd_sha256, kek_id, wrapped_key)
      values (${parsed.messageId}, ${org}, ${parsed.conversationId}, ${parsed.personId}, ${parsed.process}, ${parsed.type}, ${JSON.stringify(parsed.sbd)}::jsonb,
              ${hash}, ${kekId}, ${wrapped})
      returning *`.execute(trx);
    await recordCreated(trx, rows[0]!);
    return { row: rows[0]!, created: true };
  });
}

export async function getMessage(db: Kysely<Database>, org: string, messageId: string): Promise<NextMoveRow> {
  const { rows } = await sql<NextMoveRow>`select * from nextmove_messages where message_id = ${messageId}::uuid and sender_orgnr = ${org}`.execute(db);
  if (!rows[0]) throw notFound(messageId);
  return rows[0];
}

export interface Upload {
  filename: string;
  title: string | null;
  mime: string;
  bytes: Buffer;
}

/** Checks a document the way the intake will (type allowlist, content against type, size), before it is stored. */
async function checkContent(name: string, mime: string, bytes: Buffer, budget: SizeBudget): Promise<void> {
  const guard = new DocumentGuard(name, mime, budget);
  await new Promise<void>((resolve, reject) => {
    guard.on('error', reject);
    guard.on('data', () => undefined);
    guard.on('end', resolve);
    guard.end(bytes);
  });
}

/** Stores one document of a message not yet sent, encrypted; the same file again is a no-op, a different one under its name a 409. */
export async function uploadDocument(ctx: IntakeContext, org: string, messageId: string, upload: Upload): Promise<void> {
  const db = ctx.deps.db.kysely;
  const config = ctx.deps.config;
  const sha256 = createHash('sha256').update(upload.bytes).digest('hex');
  await db.transaction().execute(async (trx) => {
    const { rows } = await sql<NextMoveRow>`select * from nextmove_messages where message_id = ${messageId}::uuid and sender_orgnr = ${org} for update`.execute(trx);
    const row = rows[0];
    if (!row) throw notFound(messageId);
    if (row.state !== 'OPPRETTET') throw alreadySent(messageId);
    const docs = await trx.selectFrom('nextmove_documents').select(['seq', 'filename', 'sha256', 'mime', 'size']).where('message_id', '=', messageId).orderBy('seq').execute();
    const same = docs.find((d) => d.filename.toLowerCase() === upload.filename.toLowerCase());
    if (same) {
      if (same.sha256 === sha256 && same.mime === upload.mime && same.filename === upload.filename) return;
      throw new Problem(ingestionProblems.NEXTMOVE_DOCUMENT_CONFLICT, `A different document named ${JSON.stringify(upload.filename)} was already uploaded`, { document: upload.filename });
    }
    try {
      checkDocumentName(upload.filename, new Set(docs.map((d) => d.filename.toLowerCase())));
    } catch (err) {
      if (err instanceof PackageError) throw new Problem(ingestionProblems.INVALID_DOCUMENT_NAME, err.message.replace(/[\u0000-\u001f\u007f]/g, '?'));
      throw err;
    }
    if (docs.length >= config.MESSAGE_MAX_ATTACHMENTS + 1) {
      throw new Problem(ingestionProblems.TOO_MANY_DOCUMENTS, `At most one main document and ${config.MESSAGE_MAX_ATTACHMENTS} attachments`, { limit: config.MESSAGE_MAX_ATTACHMENTS });
    }
    const budget: SizeBudget = { used: docs.reduce((n, d) => n + d.size, 0), max: config.MESSAGE_MAX_BYTES };
    await checkContent(upload.filename, upload.mime, upload.bytes, budget);
    const seq = (docs.at(-1)?.seq ?? -1) + 1;
    const key = ctx.storage.keyring.unwrap(row.kek_id, row.wrapped_key, dataKeyContext(messageId));
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad(messageId, seq, upload.filename, upload.mime));
    const ciphertext = Buffer.concat([cipher.update(upload.bytes), cipher.final()]);
    await trx
      .insertInto('nextmove_documents')
      .values({ message_id: messageId, seq, filename: upload.filename, title: upload.title, mime: upload.mime, size: upload.bytes.length, sha256, iv, tag: cipher.getAuthTag(), ciphertext })
      .execute();
  });
}

type StoredDocument = Selectable<NextMoveDocumentsTable>;

function decrypt(key: Buffer, messageId: string, d: StoredDocument): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, d.iv);
  decipher.setAAD(aad(messageId, d.seq, d.filename, d.mime));
  decipher.setAuthTag(d.tag);
  return Buffer.concat([decipher.update(d.ciphertext), decipher.final()]);
}

/** Deletes a message that has not been sent (its documents and OPPRETTET status go with it). */
export async function deleteMessage(db: Kysely<Database>, org: string, messageId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const { rows } = await sql<NextMoveRow>`select state from nextmove_messages where message_id = ${messageId}::uuid and sender_orgnr = ${org} for update`.execute(trx);
    if (!rows[0]) throw notFound(messageId);
    if (rows[0].state !== 'OPPRETTET') throw alreadySent(messageId);
    await trx.deleteFrom('nextmove_statuses').where('message_id', '=', messageId).execute();
    await trx.deleteFrom('nextmove_messages').where('message_id', '=', messageId).execute();
  });
}

const idempotencyKey = (messageId: string) => `nextmove:${messageId}`;

/**
 * Sends a message: its documents (main document first, then the others in upload order) go to
 * submitParsedLetter under the key `nextmove:<messageId>` with the messageId as the letter's id,
 * so a repeated send (or one retried after a crash) makes the same one letter. A send the intake
 * refuses (4xx) leaves the message OPPRETTET, as it was. Undefined: it had been sent before.
 */
export async function sendMessage(
  ctx: IntakeContext,
  org: string,
  messageId: string,
  parsedFor: (row: NextMoveRow) => ParsedSbd,
  log: FastifyBaseLogger,
): Promise<SubmitResult | undefined> {
  const db = ctx.deps.db.kysely;
  const sender = await requireActiveSender(ctx.deps, org);
  const claimed = await db.transaction().execute(async (trx) => {
    const { rows } = await sql<NextMoveRow>`select * from nextmove_messages where message_id = ${messageId}::uuid and sender_orgnr = ${org} for update`.execute(trx);
    const row = rows[0];
    if (!row) throw notFound(messageId);
    if (row.state === 'SENDT') return undefined;
    const docs = await sql<StoredDocument>`select * from nextmove_documents where message_id = ${messageId}::uuid order by seq`.execute(trx);
    if (docs.rows.length === 0) {
      throw new Problem(ingestionProblems.NEXTMOVE_NO_DOCUMENTS, `Message with messageId = ${messageId} has no documents; upload them with PUT /api/messages/out/${messageId} first`);
    }
    const parsed = parsedFor(row);
    const main = docs.rows.find((d) => d.filename === parsed.mainDocument);
    if (!main) {
      throw new Problem(ingestionProblems.NEXTMOVE_MAIN_DOCUMENT_MISSING, `The main document ${JSON.stringify(parsed.mainDocument)} (hoveddokument) has not been uploaded`, { document: parsed.mainDocument });
    }
    if (row.state === 'OPPRETTET') await trx.updateTable('nextmove_messages').set({ state: 'SENDING' }).where('message_id', '=', messageId).execute();
    return { row, parsed, docs: [main, ...docs.rows.filter((d) => d !== main)] };
  });
  if (!claimed) return undefined;
  const { row, parsed, docs } = claimed;
  const revert = () => db.updateTable('nextmove_messages').set({ state: 'OPPRETTET' }).where('message_id', '=', messageId).where('state', '=', 'SENDING').execute();
  const markSent = async () => {
    await db.transaction().execute(async (trx) => {
      await trx.updateTable('nextmove_messages').set({ state: 'SENDT', sent_at: new Date() }).where('message_id', '=', messageId).where('state', '!=', 'SENDT').execute();
      await trx.deleteFrom('nextmove_documents').where('message_id', '=', messageId).execute();
    });
    await syncStatuses(db, { messageId });
  };

  // A letter under this id exists already: a send that committed before its process died (its key may have expired since).
  const existing = await db.selectFrom('messages').select(['id', 'sender_orgnr']).where('id', '=', messageId).executeTakeFirst();
  if (existing?.sender_orgnr === org) {
    await markSent();
    return undefined;
  }

  const now = ctx.deps.clock?.() ?? new Date();
  let result: SubmitResult;
  try {
    const raw = { ...parsed.native(docs[0]!.title ?? docs[0]!.filename), documents: docs.map((d) => ({ name: d.filename, mime: d.mime })) };
    const valid = validateMessage(raw, { maxAttachments: ctx.deps.config.MESSAGE_MAX_ATTACHMENTS, now });
    const key = ctx.storage.keyring.unwrap(row.kek_id, row.wrapped_key, dataKeyContext(messageId));
    const total = docs.reduce((n, d) => n + d.size, 0);
    const documents: DocumentSource = {
      // Small letters (as the HTTP intake measures them: INTAKE_IN_MEMORY_MAX_BYTES) are
      // decrypted whole and sealed in one go, routed by the commit; larger ones stream.
      ...(total <= ctx.deps.config.INTAKE_IN_MEMORY_MAX_BYTES
        ? { whole: (budget: SizeBudget) => Promise.resolve(valid.documents.map((doc, i) => checkDocumentData(doc.name, doc.mime, [decrypt(key, messageId, docs[i]!)], budget))) }
        : {}),
      // One document decrypted at a time, as the sealer asks for it.
      async *guarded(budget, failure) {
        for (const [i, doc] of valid.documents.entries()) {
          const guard = new DocumentGuard(doc.name, doc.mime, budget);
          guard.on('error', (err) => (failure.err ??= err));
          pipeline(Readable.from([decrypt(key, messageId, docs[i]!)]), guard, (err) => {
            if (err) failure.err ??= err;
          });
          yield { name: doc.name, mime: doc.mime, stream: guard };
        }
      },
      hashed: (budget) => {
        budget.used += total;
        return Promise.resolve(docs.map((d) => ({ name: d.filename, mime: d.mime, sha256: d.sha256 })));
      },
    };
    result = await submitParsedLetter(ctx, { org, sender, key: idempotencyKey(messageId), valid, documents, messageId }, { now, log });
  } catch (err) {
    if (err instanceof Problem && err.statusCode < 500 && err.problemType !== ingestionProblems.IDEMPOTENCY_IN_FLIGHT) await revert();
    throw err;
  }
  await markSent();
  return result;
}

/** The documents of a sent letter as the intake recorded them (name, type, SHA-256), to compare a repeated multipart send. */
export async function sentDocuments(db: Kysely<Database>, messageId: string): Promise<{ name: string; mime: string; sha256: string }[] | undefined> {
  const row = await db.selectFrom('messages').select('documents').where('id', '=', messageId).executeTakeFirst();
  return row?.documents.map((d) => ({ name: d.name, mime: d.mime, sha256: d.sha256 }));
}

export interface OutgoingQuery {
  page?: number;
  size?: number;
  sort?: string | string[];
  conversationId?: string;
  messageId?: string;
  processIdentifier?: string;
  receiverIdentifier?: string;
  senderIdentifier?: string;
  serviceIdentifier?: string;
}

/** The outgoing queue (GET /api/messages/out): the sender's messages not yet sent, filtered and paged. */
export async function findOutgoing(db: Kysely<Database>, org: string, q: OutgoingQuery): Promise<{ items: SbdBody[]; total: number }> {
  const order = orderBy(q.sort, { id: 'conv_id', created: 'created_at', lastUpdate: 'created_at', messageId: 'message_id', conversationId: 'conversation_id' }, 'conv_id');
  const none =
    (q.serviceIdentifier !== undefined && q.serviceIdentifier !== 'DPI') ||
    (q.senderIdentifier !== undefined && q.senderIdentifier !== `0192:${org}` && q.senderIdentifier !== org);
  const { rows } = await sql<{ sbd: SbdBody; total: string }>`
    select sbd, count(*) over () as total from nextmove_messages
     where sender_orgnr = ${org} and state <> 'SENDT'
       ${none ? sql`and false` : sql``}
       ${q.conversationId ? sql`and conversation_id = ${q.conversationId}` : sql``}
       ${q.messageId ? sql`and message_id::text = ${q.messageId.toLowerCase()}` : sql``}
       ${q.processIdentifier ? sql`and process = ${q.processIdentifier}` : sql``}
       ${q.receiverIdentifier ? sql`and receiver = ${q.receiverIdentifier}` : sql``}
     order by ${order.sql}
     ${limitOffset(q)}`.execute(db);
  if (rows[0] || (q.page ?? 0) === 0) return { items: rows.map((r) => r.sbd), total: rows[0] ? Number(rows[0].total) : 0 };
  return { items: [], total: (await findOutgoing(db, org, { ...q, page: 0, size: 1 })).total };
}
