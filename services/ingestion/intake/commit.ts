import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { PrintInstructions } from '../../../shared/crypto/asice.js';
import { preparedTransaction, type Run } from '../../../shared/db/prepared.js';
import { Problem } from '../../../shared/errors/problem.js';
import { newDeliveriesCtes, type CreateDelivery } from '../../../shared/storage/deliveries.js';
import type { SealedPackage } from '../../../shared/storage/packages.js';
import type { StoredAnswer } from '../idempotency.js';
import { ingestionProblems } from '../problems.js';
import { digitalRoute, routeAtCommit, type Route } from '../routing.js';
import { lookupSql, recipientOf, type LookupItem, type LookupRow } from './lookup.js';

/** A letter read, routed and sealed, waiting for its batch. */
export interface SealedLetter extends LookupItem {
  requestHash: string;
  messageId: string;
  deliveryId: string;
  wantsPrint: boolean;
  /** Chosen before sealing, or (a letter read whole, without print details) at commit from the recipient as it is then. */
  route?: Route;
  title: string;
  language: string;
  securityLevel: 3 | 4;
  availableAt: Date;
  openReceipt: boolean;
  /** JSON text, or null. */
  notifications: string | null;
  print: PrintInstructions | null;
  sealed: SealedPackage;
}

/** A letter with its route, as written. */
export type RoutedLetter = SealedLetter & { route: Route };

/** The 201 answer, stored with the key. */
export function answerOf(l: RoutedLetter): Record<string, unknown> {
  return {
    id: l.messageId,
    route: l.route.route,
    provider: { orgnr: l.route.providerOrgnr, name: l.route.providerName },
    status: 'ACCEPTED',
    senderReference: l.senderReference,
    links: { self: `/v1/messages/${l.messageId}`, receipts: '/v1/receipts' },
  };
}

export type CommitOutcome = { ok: true; body: Record<string, unknown>; replayed: boolean } | { ok: false; problem: Problem };

/** The batch could not store a key's answer although it held the key's lock: another answer is there (see submitLetter). */
export class LostRace extends Error {
  override name = 'LostRace';
}

export interface CommitContext {
  kysely: Kysely<never>;
  pool: pg.Pool;
  ttlHours: number;
  expirySeconds: number;
  now: () => Date;
}

const inFlight = () =>
  new Problem(ingestionProblems.IDEMPOTENCY_IN_FLIGHT, 'A request with this Idempotency-Key is in progress; retry after it completes', {}, { 'retry-after': '1' });
const duplicateReference = (messageId?: string) =>
  new Problem(ingestionProblems.DUPLICATE_SENDER_REFERENCE, 'senderReference is already used by another letter', messageId ? { messageId } : {});
const keyReused = (messageId: string) =>
  new Problem(ingestionProblems.IDEMPOTENCY_KEY_REUSED, 'This Idempotency-Key was used for a different request', { messageId });

/** The answer to a repeated key: the stored one when the request is the same, else 422. */
export function replayOrReuse(answer: StoredAnswer, requestHash: string): CommitOutcome {
  if (answer.requestHash !== requestHash) return { ok: false, problem: keyReused(answer.messageId) };
  return { ok: true, body: answer.response, replayed: true };
}

/** What the batch does with one letter, decided from its lookup row and the letters before it in the batch. */
type Verdict = { write: true; letter: RoutedLetter } | { write: false; outcome: CommitOutcome } | { write: false; sameAs: RoutedLetter };

/**
 * Per letter, in the documented order: the key (a stored answer is replayed or 422; a key being
 * committed by another transaction is 409; a key taken by an earlier letter of this batch makes
 * this one its replay or 422), then the senderReference (409, also against earlier letters of
 * the batch), then the route: the one chosen before sealing checked against the recipient as it
 * is now (routeAtCommit), or, for a letter not routed yet, chosen now (digitalRoute).
 */
function judge(letters: readonly SealedLetter[], rows: readonly LookupRow[], now: Date): Verdict[] {
  const keys = new Map<string, RoutedLetter>();
  const refs = new Set<string>();
  return letters.map((l, i): Verdict => {
    const row = rows[i]!;
    if (row.answer) return { write: false, outcome: replayOrReuse(row.answer, l.requestHash) };
    const earlier = keys.get(l.lockName);
    if (earlier) {
      if (earlier.requestHash !== l.requestHash) return { write: false, outcome: { ok: false, problem: keyReused(earlier.messageId) } };
      return { write: false, sameAs: earlier };
    }
    if (!row.locked) return { write: false, outcome: { ok: false, problem: inFlight() } };
    const ref = l.senderReference === null ? undefined : `${l.org}\u0000${l.senderReference}`;
    if (row.dup || (ref && refs.has(ref))) return { write: false, outcome: { ok: false, problem: duplicateReference(row.dup ?? undefined) } };
    const recipient = recipientOf(row, l.personId, now);
    const route = l.route ?? digitalRoute(recipient);
    const problem = route instanceof Problem ? route : l.route ? routeAtCommit(recipient, l.route, l.wantsPrint) : undefined;
    if (problem) return { write: false, outcome: { ok: false, problem } };
    const routed = { ...l, route: route as Route };
    keys.set(l.lockName, routed);
    if (ref) refs.add(ref);
    return { write: true, letter: routed };
  });
}

const deliveryOf = (l: RoutedLetter, expirySeconds: number): CreateDelivery => ({
  id: l.deliveryId,
  messageId: l.messageId,
  senderOrgnr: l.org,
  personId: l.personId,
  route: l.route.route,
  providerOrgnr: l.route.providerOrgnr,
  mailboxAddress: l.route.mailboxAddress,
  title: l.title,
  securityLevel: l.securityLevel,
  availableAt: l.availableAt,
  print: l.route.route === 'PRINT' ? l.print : null,
  sealed: l.sealed,
  expiresInSeconds: expirySeconds,
  newMessage: true,
});

/**
 * The letters' keys with their answers, messages, packages (those sealed in memory), chunks,
 * deliveries (with their `expires_at`, which the ingestion service's expiry sweep reads: no
 * queued job per letter) and first events: one statement, one array per column. An expired
 * answer under a key is taken over; a live one (a duplicate got there although this batch held
 * the key's lock, i.e. a lost lock) leaves a key unstored, and the count tells.
 */
export function writeLettersSql(letters: readonly RoutedLetter[], ctx: Pick<CommitContext, 'ttlHours' | 'expirySeconds'>) {
  const col = <T>(f: (l: RoutedLetter) => T) => sql.val(letters.map(f));
  const { ctes } = newDeliveriesCtes(letters.map((l) => deliveryOf(l, ctx.expirySeconds)));
  return sql<{ stored: number }>`
    with k as (
      insert into idempotency_keys (sender_orgnr, key, request_hash, message_id, response, expires_at)
      select org, key, hash, mid, response, now() + make_interval(hours => ${ctx.ttlHours}::int)
        from unnest(${col((l) => l.org)}::text[], ${col((l) => l.key)}::text[], ${col((l) => l.requestHash)}::text[],
                    ${col((l) => l.messageId)}::uuid[], ${col((l) => JSON.stringify(answerOf(l)))}::jsonb[]) as x(org, key, hash, mid, response)
      on conflict (sender_orgnr, key) do update
        set request_hash = excluded.request_hash, message_id = excluded.message_id, response = excluded.response,
            created_at = now(), expires_at = excluded.expires_at
        where idempotency_keys.expires_at <= now()
      returning 1),
    m as (
      insert into messages (id, sender_orgnr, sender_reference, person_id, title, language, security_level, available_at, open_receipt,
                            notifications, print, route, provider_orgnr, package_id, manifest_sha256, documents)
      select * from unnest(${col((l) => l.messageId)}::uuid[], ${col((l) => l.org)}::text[], ${col((l) => l.senderReference)}::text[],
                           ${col((l) => l.personId)}::text[], ${col((l) => l.title)}::text[], ${col((l) => l.language)}::text[],
                           ${col((l) => l.securityLevel)}::int[], ${col((l) => l.availableAt)}::timestamptz[], ${col((l) => l.openReceipt)}::boolean[],
                           ${col((l) => l.notifications)}::jsonb[], ${col((l) => (l.print ? JSON.stringify(l.print) : null))}::jsonb[],
                           ${col((l) => l.route.route)}::text[], ${col((l) => l.route.providerOrgnr)}::text[], ${col((l) => l.sealed.packageId)}::uuid[],
                           ${col((l) => l.sealed.manifestSha256)}::text[],
                           ${col((l) => JSON.stringify(l.sealed.manifest.documents.map((d, i) => ({ ...d, main: i === 0 }))))}::jsonb[])),
    ${ctes}
    select count(*)::int as stored from k`;
}

async function commitIn(run: Run, ctx: CommitContext, letters: readonly SealedLetter[]): Promise<CommitOutcome[]> {
  const rows = await run(lookupSql(letters, true));
  const verdicts = judge(letters, rows, ctx.now());
  const writing = verdicts.flatMap((v) => (v.write ? [v.letter] : []));
  if (writing.length > 0) {
    const [written] = await run(writeLettersSql(writing, ctx));
    if (written?.stored !== writing.length) throw new LostRace();
  }
  return verdicts.map((v): CommitOutcome => {
    if (v.write) return { ok: true, body: answerOf(v.letter), replayed: false };
    if ('sameAs' in v) return { ok: true, body: answerOf(v.sameAs), replayed: true };
    return v.outcome;
  });
}

/**
 * One batch of letters in one transaction of four round trips whatever its size: BEGIN, the
 * lookup (in-flight locks, stored answers, senderReferences, recipients), the write, COMMIT.
 * Letters that fail a check are answered alone and not written; a failing statement fails the
 * batch, which the group then runs letter by letter (see shared/batch/group.ts).
 */
export function commitLetters(ctx: CommitContext, letters: readonly SealedLetter[]): Promise<CommitOutcome[]> {
  return preparedTransaction(ctx.pool, ctx.kysely, (run) => commitIn(run, ctx, letters));
}
