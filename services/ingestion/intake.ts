import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ServiceDeps } from '../../shared/app/deps.js';
import { QueueFull } from '../../shared/batch/group.js';
import { PackageError, type DocumentData, type ManifestInput, type PrintInstructions } from '../../shared/crypto/asice.js';
import { Problem } from '../../shared/errors/problem.js';
import { findSender, type SenderInfo } from '../../shared/registry/recipients.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { sealPackage, sealPackageInMemory, type SealedPackage } from '../../shared/storage/packages.js';
import type { SizeBudget } from './documents.js';
import { findAnswer, isValidIdempotencyKey, requestFingerprint } from './idempotency.js';
import type { IntakeBatches } from './intake/batches.js';
import { LostRace, replayOrReuse, type CommitOutcome, type SealedLetter } from './intake/commit.js';
import { lockNameOf, recipientOf } from './intake/lookup.js';
import { multipartDocuments, multipartLimits, Parts, partsError, readMessagePart, type DocumentSource, type PartSource } from './intake/parts.js';
import { UploadWatchdog } from './intake/uploads.js';
import { validateMessage, type ValidMessage } from './intake/validate.js';
import { readWholeBody, WholeBodyParts } from './intake/whole-body.js';
import { ingestionProblems, intakeOverloaded } from './problems.js';
import { routeRecipient, type Route } from './routing.js';

export { validateMessage, type DeclaredDocument, type ValidMessage } from './intake/validate.js';
export type { DocumentSource } from './intake/parts.js';
export { DOCUMENT_FIELD } from './intake/parts.js';

export interface IntakeContext {
  deps: ServiceDeps;
  storage: StorageContext;
  intake: IntakeBatches;
}

export interface SubmitResult {
  status: 201;
  body: Record<string, unknown>;
  replayed: boolean;
}

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

/** Where an accepted letter is logged (ids, route and sizes only). */
export interface IntakeLog {
  info(obj: Record<string, unknown>, msg: string): void;
}

/** One letter whose message part is read and valid, its documents still to come from `documents`. */
export interface ParsedLetter {
  org: string;
  sender: SenderInfo;
  key: string;
  valid: ValidMessage;
  documents: DocumentSource;
  /** Told when the documents have been read whole (the upload is over; the commit is still to come). */
  onDocumentsRead?: () => void;
  /** The letter's id: a random UUID unless the caller brings its own (the next-move messageId). */
  messageId?: string;
}

const unwrap = (outcome: CommitOutcome): SubmitResult => {
  if (!outcome.ok) throw outcome.problem;
  return { status: 201, body: outcome.body, replayed: outcome.replayed };
};

/** The letter only: its route is signed per delivery, since it can change after sealing (docs/storage.md). */
function manifestFor(letter: ParsedLetter, messageId: string): ManifestInput {
  const part = letter.valid.part;
  return {
    messageId,
    sender: { orgnr: letter.org, name: letter.sender.name },
    recipient: { personId: part.recipient.personId },
    title: part.title,
    language: part.language,
    securityLevel: part.securityLevel,
    availableAt: letter.valid.availableAt.toISOString(),
    openReceipt: part.openReceipt ?? false,
  };
}

/** Streams the documents through their checks into a package sealed in memory (or, past one chunk, into the blob store). */
async function sealDocuments(storage: StorageContext, letter: ParsedLetter, manifest: ManifestInput, budget: SizeBudget): Promise<SealedPackage> {
  const failure: { err?: unknown } = {};
  try {
    return await sealPackage(storage, { manifest, documents: letter.documents.guarded(budget, failure), deferWrite: true });
  } catch (err) {
    const cause = failure.err ?? err;
    if (cause instanceof Problem) throw cause;
    // A failure of a document stream is the body's (a multipart body that ends early, a
    // malformed part), never ours: 400, not 500.
    if (failure.err !== undefined) throw partsError(cause);
    if ((cause as { code?: string }).code?.startsWith('FST_') || cause instanceof PackageError) throw partsError(cause);
    throw cause;
  }
}

/** Seals documents read whole (see DocumentSource.whole); a bad document name is the client's. */
async function sealInMemory(storage: StorageContext, manifest: ManifestInput, documents: DocumentData[]): Promise<SealedPackage> {
  try {
    return await sealPackageInMemory(storage, { manifest, documents, deferWrite: true });
  } catch (err) {
    throw err instanceof PackageError ? partsError(err) : err;
  }
}

/** `route` is left to the commit for a letter read whole without print details (see submitParsedLetter). */
function sealedLetter(letter: ParsedLetter, ids: { messageId: string; deliveryId: string }, route: Route | undefined, sealed: SealedPackage): SealedLetter {
  const part = letter.valid.part;
  const notifications = part.notifications ? { ...part.notifications, repeatAfterDays: part.notifications.repeatAfterDays ?? [] } : null;
  return {
    org: letter.org,
    key: letter.key,
    lockName: lockNameOf(letter.org, letter.key),
    senderReference: part.senderReference ?? null,
    personId: part.recipient.personId,
    requestHash: requestFingerprint(letter.valid.raw, sealed.manifest.documents),
    ...ids,
    wantsPrint: part.print !== undefined,
    route,
    title: part.title,
    language: part.language,
    securityLevel: part.securityLevel,
    availableAt: letter.valid.availableAt,
    openReceipt: part.openReceipt ?? false,
    notifications: notifications ? JSON.stringify(notifications) : null,
    print: (part.print ?? null) as PrintInstructions | null,
    sealed,
  };
}

/** A sealed package whose letter was not written: its rows (if any were written while streaming) go now, not after the retention sweep. */
async function dropUnwritten(storage: StorageContext, sealed: SealedPackage): Promise<void> {
  if (sealed.pending) return; // never written
  await storage.db.deleteFrom('packages').where('id', '=', sealed.packageId).where((eb) => eb.not(eb.exists(eb.selectFrom('deliveries').select('id').where('package_id', '=', sealed.packageId)))).execute().catch(() => undefined);
}

/** Joins the group commit; a lost race on the key (another process stored an answer first) is the stored answer. */
async function commitSealed(ctx: IntakeContext, letter: SealedLetter): Promise<SubmitResult> {
  let outcome: CommitOutcome;
  try {
    outcome = await ctx.intake.commit.add(letter);
  } catch (err) {
    if (err instanceof QueueFull) {
      ctx.intake.shed('queue');
      await dropUnwritten(ctx.storage, letter.sealed);
      throw intakeOverloaded('The intake has more letters waiting for their commit than it takes');
    }
    if (!(err instanceof LostRace)) throw err;
    const winner = await findAnswer(ctx.deps.db.kysely, letter.org, letter.key);
    if (!winner) throw new Problem(ingestionProblems.IDEMPOTENCY_IN_FLIGHT, 'A request with this Idempotency-Key completed concurrently; retry', {}, { 'retry-after': '1' });
    outcome = replayOrReuse(winner, letter.requestHash);
  }
  if (!outcome.ok || outcome.replayed) await dropUnwritten(ctx.storage, letter.sealed);
  return unwrap(outcome);
}

/**
 * A letter whose message part is read and valid, from the key check to the answer (the HTTP
 * intake, and anything else that submits letters, e.g. a bulk send). Two ways, one commit:
 *
 * - **In memory** (the documents can be read whole: a small body, a bulk letter) and without
 *   print details: the documents are read and checked, sealed in one go, and the group commit's
 *   one lookup checks key, senderReference and recipient and routes the letter. No statement
 *   runs before the commit.
 * - **Streamed** (otherwise):
 *   1. lookup (batched with concurrent letters, one short statement, no transaction): the key's
 *      stored answer (then the documents are only hashed, and the answer replayed or 422), a
 *      letter with the same senderReference (409), the recipient (routing, 422);
 *   2. the documents stream through their checks into a package sealed in memory (or, past one
 *      chunk, into the blob store): no database connection is held while the client's bytes
 *      arrive;
 *   3. the group commit checks key, senderReference and recipient again (see intake/commit.ts).
 *
 * 201 only after the commit.
 */
export async function submitParsedLetter(ctx: IntakeContext, letter: ParsedLetter, opts: { now?: Date; log?: IntakeLog } = {}): Promise<SubmitResult> {
  const now = opts.now ?? ctx.deps.clock?.() ?? new Date();
  const budget: SizeBudget = { used: 0, max: ctx.deps.config.MESSAGE_MAX_BYTES };
  const ids = { messageId: letter.messageId ?? randomUUID(), deliveryId: randomUUID() };
  let sealed: SealedPackage;
  let route: Route | undefined;
  if (letter.documents.whole && letter.valid.part.print === undefined) {
    const documents = await letter.documents.whole(budget);
    letter.onDocumentsRead?.();
    sealed = await sealInMemory(ctx.storage, manifestFor(letter, ids.messageId), documents);
  } else {
    const streamed = await lookUpAndStream(ctx, letter, ids.messageId, budget, now);
    if ('replay' in streamed) return streamed.replay;
    ({ sealed, route } = streamed);
  }
  const result = await commitSealed(ctx, sealedLetter(letter, ids, route, sealed));
  if (!result.replayed) opts.log?.info({ messageId: ids.messageId, route: result.body.route, documents: sealed.manifest.documents.length, bytes: budget.used }, 'letter accepted');
  return result;
}

/** The streamed way's steps 1 and 2: a replayed answer, or the letter routed and sealed. */
async function lookUpAndStream(ctx: IntakeContext, letter: ParsedLetter, messageId: string, budget: SizeBudget, now: Date): Promise<{ replay: SubmitResult } | { sealed: SealedPackage; route: Route }> {
  const { valid } = letter;
  const part = valid.part;
  const lockName = lockNameOf(letter.org, letter.key);
  const first = await ctx.intake.lookup.add({ org: letter.org, key: letter.key, lockName, senderReference: part.senderReference ?? null, personId: part.recipient.personId });
  if (first.answer) {
    const hashed = await letter.documents.hashed(budget);
    letter.onDocumentsRead?.();
    return { replay: unwrap(replayOrReuse(first.answer, requestFingerprint(valid.raw, hashed))) };
  }
  if (first.dup) throw new Problem(ingestionProblems.DUPLICATE_SENDER_REFERENCE, 'senderReference is already used by another letter', { messageId: first.dup });
  const route = await routeRecipient(ctx.deps.db.kysely, recipientOf(first, part.recipient.personId, now), part.print !== undefined);
  const sealed = await sealDocuments(ctx.storage, letter, manifestFor(letter, messageId), budget);
  letter.onDocumentsRead?.();
  return { sealed, route };
}

/**
 * POST /v1/messages, once admitted (intake/admit-hook.ts): sender, key and content type, an
 * upload slot (per-client bound), then the message part, then submitParsedLetter. The upload is under a watchdog
 * (INTAKE_IDLE_TIMEOUT_MS, INTAKE_BODY_TIMEOUT_MS) until its documents have been read.
 */
export async function submitLetter(ctx: IntakeContext, request: FastifyRequest, org: string): Promise<SubmitResult> {
  const { deps, intake } = ctx;
  const config = deps.config;
  const sender = await requireActiveSender(deps, org);
  const key = request.headers['idempotency-key'];
  if (!isValidIdempotencyKey(key)) throw new Problem(ingestionProblems.IDEMPOTENCY_KEY_REQUIRED, 'Send an Idempotency-Key header, e.g. a UUID');
  if (!request.isMultipart()) throw new Problem(ingestionProblems.MULTIPART_REQUIRED, 'Send multipart/form-data: a `message` part, then the documents');
  let release: () => void;
  try {
    release = intake.slots.take(org);
  } catch (err) {
    intake.shed((err as Problem).statusCode === 429 ? 'client' : 'uploads');
    throw err;
  }
  const watchdog = new UploadWatchdog(request.raw, config.INTAKE_IDLE_TIMEOUT_MS, config.INTAKE_BODY_TIMEOUT_MS);
  const read = () => {
    watchdog.stop();
    release();
  };
  try {
    const now = deps.clock?.() ?? new Date();
    // A small body (by its Content-Length; a chunked one has none) is read whole.
    const inMemory = Number(request.headers['content-length']) <= config.INTAKE_IN_MEMORY_MAX_BYTES;
    const parts: PartSource = inMemory ? new WholeBodyParts(await readWholeBody(request.raw, watchdog), request.headers, multipartLimits(config), watchdog) : new Parts(request, watchdog);
    const valid = validateMessage(await readMessagePart(parts), { maxAttachments: config.MESSAGE_MAX_ATTACHMENTS, now });
    const letter: ParsedLetter = { org, sender, key, valid, documents: multipartDocuments(parts, valid.documents), onDocumentsRead: read };
    return await submitParsedLetter(ctx, letter, { now, log: request.log });
  } finally {
    read();
  }
}
