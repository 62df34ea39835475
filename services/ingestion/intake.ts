import { createHash, randomUUID } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { sql, type Transaction } from 'kysely';
import { Compile } from 'typebox/compile';
import type { ServiceDeps } from '../../shared/app/deps.js';
import type { Database } from '../../shared/db/database.js';
import { checkDocumentName, PackageError, type DocumentInput, type ManifestInput, type PrintInstructions } from '../../shared/crypto/asice.js';
import { commonProblems, Problem } from '../../shared/errors/problem.js';
import { isValidPersonId } from '../../shared/ids/person-id.js';
import { outboxRow } from '../../shared/outbox/outbox.js';
import { findSender, recipientFromRow, recipientsQuery, type Recipient, type RecipientRow, type SenderInfo } from '../../shared/registry/recipients.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { createDelivery } from '../../shared/storage/deliveries.js';
import { PostgresBlobStore } from '../../shared/storage/blob-store.js';
import { sealPackage, type SealedPackage } from '../../shared/storage/packages.js';
import { DocumentGuard, documentType, type SizeBudget } from './documents.js';
import { EXPIRY_JOB, INGESTION_QUEUE, type ExpiryJob } from './expiry.js';
import { findAnswer, isValidIdempotencyKey, requestFingerprint, type InFlightLocks, type StoredAnswer } from './idempotency.js';
import { ingestionProblems } from './problems.js';
import { routeLetter, routeRecipient, type Route } from './routing.js';
import { MessagePartSchema, type MessagePart } from './routes/schemas.js';

export interface IntakeContext {
  deps: ServiceDeps;
  storage: StorageContext;
  locks: InFlightLocks;
}

export interface SubmitResult {
  status: 201;
  body: Record<string, unknown>;
  replayed: boolean;
}

const messageValidator = Compile(MessagePartSchema);
const MAX_MESSAGE_PART = 256 * 1024;
/** Requests up to this size are sealed inside the letter's transaction (see submitLetter). */
export const SEAL_IN_TRANSACTION_BYTES = 2 * 1024 * 1024;

/** Known senders per database handle, kept SENDER_CACHE_MS: a suspension takes effect within that. */
const senderCache = new WeakMap<object, Map<string, { sender: SenderInfo; until: number }>>();
const SENDER_CACHE_MS = 5_000;

async function cachedSender(deps: ServiceDeps, org: string): Promise<SenderInfo | undefined> {
  let cache = senderCache.get(deps.db);
  if (!cache) senderCache.set(deps.db, (cache = new Map()));
  const now = Date.now();
  const hit = cache.get(org);
  if (hit && hit.until > now) return hit.sender;
  const sender = await findSender(deps.db.kysely, org);
  if (sender) cache.set(org, { sender, until: now + SENDER_CACHE_MS });
  else cache.delete(org);
  return sender;
}

/** The sender behind a token may send only while onboarded and active (looked up at most every few seconds). */
export async function requireActiveSender(deps: ServiceDeps, org: string) {
  const sender = await cachedSender(deps, org);
  if (!sender) throw new Problem(ingestionProblems.SENDER_NOT_ONBOARDED, 'This organisation is not onboarded as a sender');
  if (sender.status !== 'active') throw new Problem(ingestionProblems.SENDER_SUSPENDED, 'This sender is suspended');
  return sender;
}

/** Errors of the multipart parser (busboy, @fastify/multipart) as problems: all are the client's. */
function partsError(err: unknown): Problem {
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

class Parts {
  private readonly it: AsyncIterator<Multipart>;
  constructor(request: FastifyRequest) {
    this.it = request.parts()[Symbol.asyncIterator]();
  }
  async next(): Promise<Multipart | undefined> {
    try {
      const r = await this.it.next();
      return r.done ? undefined : r.value;
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

async function readMessagePart(parts: Parts): Promise<unknown> {
  const part = await parts.next();
  if (!part || part.fieldname !== 'message') {
    if (part?.type === 'file') part.file.resume();
    throw new Problem(ingestionProblems.MESSAGE_PART_MISSING, 'Send the JSON `message` part first, then one file part per document');
  }
  let raw: unknown;
  if (part.type === 'file') raw = (await readLimited(part.file, MAX_MESSAGE_PART)).toString('utf8');
  else if (part.valueTruncated) throw new Problem(ingestionProblems.INVALID_MESSAGE, 'The message part is too large');
  else raw = part.value;
  if (typeof raw !== 'string') return raw; // parsed by the multipart plugin (Content-Type: application/json)
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new Problem(ingestionProblems.INVALID_MESSAGE, 'The message part is not valid JSON');
  }
}

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

/** The next part must be the file of `doc`. */
async function documentPart(parts: Parts, doc: DeclaredDocument): Promise<MultipartFile> {
  const part = await parts.next();
  if (!part) throw new Problem(ingestionProblems.MISSING_DOCUMENT, `No file part for document ${JSON.stringify(doc.name)}; send them in the declared order`, { document: doc.name });
  if (part.type !== 'file') throw new Problem(ingestionProblems.UNEXPECTED_PART, `Expected the file of ${JSON.stringify(doc.name)}, got field ${JSON.stringify(part.fieldname)}`);
  if (part.filename !== doc.name) {
    part.file.resume();
    throw new Problem(ingestionProblems.MISSING_DOCUMENT, `Expected the file ${JSON.stringify(doc.name)} next (declared order), got ${JSON.stringify(part.filename)}`, { document: doc.name });
  }
  return part;
}

async function noMoreParts(parts: Parts): Promise<void> {
  const extra = await parts.next();
  if (extra) {
    if (extra.type === 'file') extra.file.resume();
    throw new Problem(ingestionProblems.UNEXPECTED_PART, `Unexpected part ${JSON.stringify(extra.fieldname)} after the declared documents`);
  }
}

/** Documents streamed through their guards, in declared order; the first failure is kept in `failure`. */
async function* documentStreams(parts: Parts, docs: DeclaredDocument[], budget: SizeBudget, failure: { err?: unknown }): AsyncGenerator<DocumentInput> {
  try {
    for (const doc of docs) {
      const part = await documentPart(parts, doc);
      const guard = new DocumentGuard(doc.name, doc.mime, budget);
      guard.on('error', (err) => (failure.err ??= err));
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
}

/** For a repeated key: the fingerprint of this request, reading and hashing (never storing) the documents. */
async function fingerprintOnly(parts: Parts, valid: ValidMessage, budget: SizeBudget): Promise<string> {
  const hashed: { name: string; mime: string; sha256: string }[] = [];
  for (const doc of valid.documents) {
    const part = await documentPart(parts, doc);
    const hash = createHash('sha256');
    for await (const chunk of part.file as AsyncIterable<Buffer>) {
      budget.used += chunk.length;
      if (budget.used > budget.max) throw new Problem(ingestionProblems.LETTER_TOO_LARGE, `the documents exceed ${budget.max} bytes`);
      hash.update(chunk);
    }
    hashed.push({ name: doc.name, mime: doc.mime, sha256: hash.digest('hex') });
  }
  await noMoreParts(parts);
  return requestFingerprint(valid.raw, hashed);
}

function replay(answer: StoredAnswer, requestHash: string): SubmitResult {
  if (answer.requestHash !== requestHash) {
    throw new Problem(ingestionProblems.IDEMPOTENCY_KEY_REUSED, 'This Idempotency-Key was used for a different request', { messageId: answer.messageId });
  }
  return { status: 201, body: answer.response, replayed: true };
}

class LostRace extends Error {}

const isUniqueViolation = (err: unknown, constraint: string) =>
  (err as { code?: string }).code === '23505' && String((err as { constraint?: string }).constraint ?? '').includes(constraint);

/**
 * POST /v1/messages: check the sender and the key, read and validate the message part, route,
 * stream the documents through their checks into the sealer, then commit message, delivery,
 * first event, outbox job and the key's answer in one transaction.
 *
 * Round trips of a small letter (the common case): BEGIN, one statement for the in-flight lock +
 * stored answer + senderReference + recipient, one for the key's answer + message + outbox job,
 * one for the sealed package + its chunk + the delivery + its first event, COMMIT. The sender is
 * cached for a few seconds.
 */
export async function submitLetter(ctx: IntakeContext, request: FastifyRequest, org: string): Promise<SubmitResult> {
  const { deps, storage, locks } = ctx;
  const config = deps.config;
  const sender = await requireActiveSender(deps, org);
  const key = request.headers['idempotency-key'];
  if (!isValidIdempotencyKey(key)) throw new Problem(ingestionProblems.IDEMPOTENCY_KEY_REQUIRED, 'Send an Idempotency-Key header, e.g. a UUID');
  if (!request.isMultipart()) throw new Problem(ingestionProblems.MULTIPART_REQUIRED, 'Send multipart/form-data: a `message` part, then the documents');

  const now = deps.clock?.() ?? new Date();
  const parts = new Parts(request);
  const valid = validateMessage(await readMessagePart(parts), { maxAttachments: config.MESSAGE_MAX_ATTACHMENTS, now });
  const budget: SizeBudget = { used: 0, max: config.MESSAGE_MAX_BYTES };
  const db = deps.db.kysely;
  const part = valid.part;
  const lockName = `idempotency:${org}:${key}`;
  const inFlight = () =>
    new Problem(ingestionProblems.IDEMPOTENCY_IN_FLIGHT, 'A request with this Idempotency-Key is in progress; retry after it completes', {}, { 'retry-after': '1' });
  const duplicateReference = (messageId?: string) =>
    new Problem(ingestionProblems.DUPLICATE_SENDER_REFERENCE, 'senderReference is already used by another letter', messageId ? { messageId } : {});

  const messageId = randomUUID();
  const deliveryId = randomUUID();
  const print = (part.print ?? null) as PrintInstructions | null;
  const manifestFor = (route: Route): ManifestInput => ({
    messageId,
    sender: { orgnr: org, name: sender.name },
    recipient: { personId: part.recipient.personId, mailbox: route.route === 'DIGITAL' ? { providerOrgnr: route.providerOrgnr, address: route.mailboxAddress } : null },
    title: part.title,
    language: part.language,
    securityLevel: part.securityLevel,
    availableAt: valid.availableAt.toISOString(),
    openReceipt: part.openReceipt ?? false,
    ...(route.route === 'PRINT' && print ? { print } : {}),
  });

  const failure: { err?: unknown } = {};
  const seal = (sctx: StorageContext, route: Route, deferWrite = false) =>
    sealPackage(sctx, { manifest: manifestFor(route), documents: documentStreams(parts, valid.documents, budget, failure), deferWrite }).catch((err: unknown) => {
      const cause = failure.err ?? err;
      if (cause instanceof Problem) throw cause;
      if ((cause as { code?: string }).code?.startsWith('FST_') || cause instanceof PackageError) throw partsError(cause);
      throw cause;
    });
  const notifications = part.notifications ? { ...part.notifications, repeatAfterDays: part.notifications.repeatAfterDays ?? [] } : null;
  let body: Record<string, unknown> | undefined;
  let requestHash = '';
  let documents = 0;
  /** The key's answer, message and outbox job in one statement, then the delivery with its first event. */
  const commit = async (trx: Transaction<Database>, sealed: SealedPackage, route: Route) => {
    requestHash = requestFingerprint(valid.raw, sealed.manifest.documents);
    documents = sealed.manifest.documents.length;
    body = {
      id: messageId,
      route: route.route,
      provider: { orgnr: route.providerOrgnr, name: route.providerName },
      status: 'ACCEPTED',
      senderReference: part.senderReference ?? null,
      links: { self: `/v1/messages/${messageId}`, receipts: '/v1/receipts' },
    };
    const job = outboxRow({ queue: INGESTION_QUEUE, name: EXPIRY_JOB, data: { messageId, deliveryId } satisfies ExpiryJob, delayMs: config.DELIVERY_EXPIRY_SECONDS * 1000 });
    const docs = JSON.stringify(sealed.manifest.documents.map((d, i) => ({ ...d, main: i === 0 })));
    // An expired answer under the key is taken over; a live one means a duplicate got there
    // first (the insert returns no row): LostRace rolls everything back.
    const { rows } = await sql<{ stored: number }>`
      with k as (
        insert into idempotency_keys (sender_orgnr, key, request_hash, message_id, response, expires_at)
        values (${org}, ${key}, ${requestHash}, ${messageId}, ${JSON.stringify(body)}, now() + make_interval(hours => ${config.IDEMPOTENCY_TTL_HOURS}))
        on conflict (sender_orgnr, key) do update
          set request_hash = excluded.request_hash, message_id = excluded.message_id, response = excluded.response,
              created_at = now(), expires_at = excluded.expires_at
          where idempotency_keys.expires_at <= now()
        returning 1),
      m as (
        insert into messages (id, sender_orgnr, sender_reference, person_id, title, language, security_level, available_at, open_receipt,
                              notifications, print, route, provider_orgnr, package_id, manifest_sha256, documents)
        values (${messageId}, ${org}, ${part.senderReference ?? null}, ${part.recipient.personId}, ${part.title}, ${part.language},
                ${part.securityLevel}, ${valid.availableAt}, ${part.openReceipt ?? false}, ${notifications ? JSON.stringify(notifications) : null},
                ${print ? JSON.stringify(print) : null}, ${route.route}, ${route.providerOrgnr}, ${sealed.packageId}, ${sealed.manifestSha256}, ${docs})),
      o as (
        insert into outbox (queue, job_name, payload, delay_ms) values (${job.queue}, ${job.job_name}, ${job.payload}, ${job.delay_ms}))
      select count(*)::int as stored from k`.execute(trx);
    if (rows[0]?.stored !== 1) throw new LostRace();
    await createDelivery(trx, storage, {
      id: deliveryId,
      messageId,
      senderOrgnr: org,
      personId: part.recipient.personId,
      route: route.route,
      providerOrgnr: route.providerOrgnr,
      mailboxAddress: route.mailboxAddress,
      title: part.title,
      securityLevel: part.securityLevel,
      availableAt: valid.availableAt,
      print: route.route === 'PRINT' ? print : null,
      sealed,
      newMessage: true,
    });
  };
  const onCommitError = async (err: unknown): Promise<SubmitResult> => {
    if (err instanceof LostRace) {
      const winner = await findAnswer(db, org, key);
      if (winner) return replay(winner, requestHash);
      throw new Problem(ingestionProblems.IDEMPOTENCY_IN_FLIGHT, 'A request with this Idempotency-Key completed concurrently; retry');
    }
    if (isUniqueViolation(err, 'sender_reference')) throw duplicateReference();
    throw err;
  };
  const accepted = (route: Route): SubmitResult => {
    request.log.info({ messageId, route: route.route, documents, bytes: budget.used }, 'letter accepted');
    return { status: 201, body: body!, replayed: false };
  };

  const length = Number(request.headers['content-length']);
  if (Number.isFinite(length) && length <= SEAL_IN_TRANSACTION_BYTES) {
    // Small letters (the common case) are sealed inside the letter's own transaction: one commit
    // for package, chunk, message, delivery, event and job, and nothing left behind by a crash at
    // any point. The body is small, so the transaction is short. The transaction's first
    // statement takes the in-flight lock (a transaction advisory lock on the same key as the
    // session locks of the large path, so the two conflict; no extra connection, released by the
    // commit, the rollback or a dead connection) and reads the stored answer, a letter with the
    // same senderReference and the recipient's registry row. Their verdicts are taken in the
    // documented order: key, then senderReference, then routing.
    await storage.hub.signingKey(); // cached; a cold load must not need a second connection inside the transaction
    let earlier: StoredAnswer | undefined;
    let route: Route | undefined;
    try {
      await db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ locked: boolean; answer: StoredAnswer | null; dup: string | null; recipient: RecipientRow | null }>`
          select pg_try_advisory_xact_lock(hashtextextended(${lockName}, 0)) as locked,
                 (select json_build_object('requestHash', request_hash, 'messageId', message_id, 'response', response)
                    from idempotency_keys where sender_orgnr = ${org} and key = ${key} and expires_at > now()) as answer,
                 ${part.senderReference ? sql`(select id from messages where sender_orgnr = ${org} and sender_reference = ${part.senderReference})` : sql`null`}::uuid as dup,
                 (select to_jsonb(r) - 'mailbox_certificate' from (${recipientsQuery([part.recipient.personId])}) r) as recipient`.execute(trx);
        const first = rows[0]!;
        if (first.answer) {
          earlier = first.answer;
          return;
        }
        if (!first.locked) throw inFlight();
        if (first.dup) throw duplicateReference(first.dup);
        const recipient: Recipient = first.recipient
          ? recipientFromRow({ ...first.recipient, mailbox_certificate: null }, now)
          : { personId: part.recipient.personId, status: 'NOT_REGISTERED', reserved: false, language: null, canNotify: false };
        route = await routeRecipient(trx, recipient, part.print !== undefined);
        const sealed = await seal({ ...storage, db: trx, blobs: new PostgresBlobStore(trx) }, route, true);
        await commit(trx, sealed, route);
      });
    } catch (err) {
      return onCommitError(err);
    }
    if (earlier) return replay(earlier, await fingerprintOnly(parts, valid, budget));
    return accepted(route!);
  }

  // Large letters: the key is checked and held by a session advisory lock on a dedicated
  // connection, and the documents stream into the sealer first, so no transaction stays open
  // during a long upload; a crash before the commit leaves only an unreferenced package, which
  // the storage retention sweep removes.
  const earlier = await findAnswer(db, org, key);
  if (earlier) return replay(earlier, await fingerprintOnly(parts, valid, budget));
  if (!(await locks.tryLock(lockName))) throw inFlight();
  try {
    // A duplicate that completed between the first look and the lock is caught at commit: the
    // key's primary key refuses a second answer (LostRace) and the stored one is replayed.
    if (part.senderReference) {
      const dup = await db.selectFrom('messages').select('id').where('sender_orgnr', '=', org).where('sender_reference', '=', part.senderReference).executeTakeFirst();
      if (dup) throw duplicateReference(dup.id);
    }
    const route: Route = await routeLetter(db, part.recipient.personId, part.print !== undefined, now);
    try {
      const sealed = await seal(storage, route);
      await db.transaction().execute((trx) => commit(trx, sealed, route));
    } catch (err) {
      return await onCommitError(err);
    }
    return accepted(route);
  } finally {
    await locks.unlock(lockName);
  }
}
