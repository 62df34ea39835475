import { compactVerify, importJWK, type JWK } from 'jose';
import { HUB_ALG } from '../crypto/hub-keys.js';
import { canonicalJson, eventHash } from './chain.js';
import { BUNDLE_FORMAT, STATEMENT_TYP, type EvidenceBundle, type StatementPayload } from './bundle.js';
import { HEAD_TYP, LOG_ID, eventLeaf, type SignedHead, type TreeHead } from './log.js';
import { verifyConsistency, verifyInclusion } from './merkle.js';
import { RECEIPT_TYP, type ReceiptPayload } from './events.js';

/**
 * Offline checks of an evidence bundle and of a consistency proof (docs/evidence.md): no
 * database, no network. Every problem has a stable `code` (the same ones
 * scripts/verify-bundle.py reports) and says where it is (`event 3`, `receipt <id>`, ...).
 */

export type ProblemCode =
  | 'format'
  | 'key-unpublished'
  | 'event-order'
  | 'event-missing'
  | 'event-hash'
  | 'redaction'
  | 'chain-link'
  | 'documents'
  | 'receipt-signature'
  | 'receipt-message'
  | 'receipt-event'
  | 'head-signature'
  | 'inclusion'
  | 'statement-signature'
  | 'statement'
  | 'consistency'
  | 'head-mismatch';

export interface BundleProblem {
  code: ProblemCode;
  where: string;
  message: string;
}

export interface BundleVerification {
  valid: boolean;
  messageId?: string;
  events: number;
  receipts: number;
  treeSize: number | null;
  /** Events not yet in the signed head (the sequencer takes them within EVIDENCE_HEAD_SECONDS). */
  pending: number[];
  problems: BundleProblem[];
}

interface Keys {
  keys: JWK[];
}

const isHex64 = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);

/** Verifies a compact JWS (ES256) with the key named by its `kid` among `keys`; returns its payload. */
async function verifyJws(jws: unknown, keys: Keys, typ: string): Promise<{ payload: unknown; kid?: string } | { error: string }> {
  if (typeof jws !== 'string') return { error: 'not a compact JWS' };
  let header: { kid?: string; alg?: string; typ?: string };
  try {
    header = JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString('utf8')) as typeof header;
  } catch {
    return { error: 'the JWS header is not JSON' };
  }
  const jwk = keys.keys.find((k) => k.kid === header.kid);
  if (!jwk) return { error: `signed by key ${String(header.kid)}, which the bundle does not hold` };
  if (header.typ !== typ) return { error: `typ is ${String(header.typ)}, not ${typ}` };
  try {
    const { payload } = await compactVerify(jws, await importJWK(jwk, HUB_ALG), { algorithms: [HUB_ALG] });
    return { payload: JSON.parse(Buffer.from(payload).toString('utf8')) as unknown, kid: header.kid };
  } catch (err) {
    return { error: `the signature does not verify with key ${String(header.kid)} (${err instanceof Error ? err.message : String(err)})` };
  }
}

const sameKey = (a: JWK, b: JWK) => a.kty === b.kty && a.crv === b.crv && a.x === b.x && a.y === b.y;

/** Every embedded key must be one the hub published (when the caller holds the published JWKS). */
function checkKeys(keys: Keys, published: Keys | undefined, problems: BundleProblem[]) {
  if (!published) return;
  for (const k of keys.keys) {
    const p = published.keys.find((x) => x.kid === k.kid);
    if (!p || !sameKey(p, k)) problems.push({ code: 'key-unpublished', where: `key ${String(k.kid)}`, message: `key ${String(k.kid)} is not in the published JWKS${p ? ' (a different key has its kid)' : ''}` });
  }
}

async function checkHead(head: unknown, keys: Keys, problems: BundleProblem[], where: string): Promise<TreeHead | undefined> {
  const h = head as Partial<SignedHead> | null | undefined;
  if (!h || typeof h !== 'object') return undefined;
  const v = await verifyJws(h.jws, keys, HEAD_TYP);
  if ('error' in v) {
    problems.push({ code: 'head-signature', where, message: v.error });
    return undefined;
  }
  const p = v.payload as Partial<TreeHead>;
  if (p.log !== LOG_ID || !Number.isInteger(p.treeSize) || !isHex64(p.rootHash)) {
    problems.push({ code: 'head-signature', where, message: 'the signed head is not a tree head of this log' });
    return undefined;
  }
  if (h.treeSize !== p.treeSize || h.rootHash !== p.rootHash || h.timestamp !== p.timestamp) {
    problems.push({ code: 'head-signature', where, message: 'the head fields differ from what its signature covers' });
  }
  return p as TreeHead;
}

export async function verifyBundle(input: unknown, opts: { jwks?: Keys } = {}): Promise<BundleVerification> {
  try {
    return await checkBundle(input, opts);
  } catch (err) {
    // A document too broken to walk (an event that is not an object, say).
    const message = `malformed bundle: ${err instanceof Error ? err.message : String(err)}`;
    return { valid: false, events: 0, receipts: 0, treeSize: null, pending: [], problems: [{ code: 'format', where: 'bundle', message }] };
  }
}

/** The hash of a shown event recomputed from its content; undefined when it has none that hashes. */
function shownHash(messageId: string, e: { seq: number; type: unknown; at: unknown; data: unknown; prevHash: string | null }): string | undefined {
  try {
    if (typeof e.type !== 'string' || typeof e.at !== 'string' || new Date(e.at).toISOString() !== e.at) return undefined;
    return eventHash({ messageId, seq: e.seq, type: e.type, at: new Date(e.at), data: e.data as Record<string, unknown>, prevHash: e.prevHash });
  } catch {
    return undefined;
  }
}

async function checkBundle(input: unknown, opts: { jwks?: Keys }): Promise<BundleVerification> {
  const problems: BundleProblem[] = [];
  const b = input as Partial<EvidenceBundle>;
  const out = (): BundleVerification => ({
    valid: problems.length === 0,
    messageId: typeof b?.messageId === 'string' ? b.messageId : undefined,
    events: Array.isArray(b?.events) ? b.events.length : 0,
    receipts: Array.isArray(b?.receipts) ? b.receipts.length : 0,
    treeSize: head?.treeSize ?? null,
    pending,
    problems,
  });
  let head = undefined as TreeHead | undefined;
  const pending: number[] = [];
  if (!b || typeof b !== 'object' || b.format !== BUNDLE_FORMAT || typeof b.messageId !== 'string' || !Array.isArray(b.events) || !Array.isArray(b.receipts) || !Array.isArray(b.keys?.keys)) {
    problems.push({ code: 'format', where: 'bundle', message: `not a ${BUNDLE_FORMAT} document` });
    return out();
  }
  const keys = b.keys;
  checkKeys(keys, opts.jwks, problems);

  // The chain: seq 1, 2, 3 ... in order, each hash recomputed, each prevHash the hash before.
  let prev: string | null = null;
  b.events.forEach((e, i) => {
    const where = `event ${e.seq}`;
    if (e.seq !== i + 1) {
      const seen = b.events!.slice(0, i).some((x) => x.seq >= e.seq);
      if (seen) problems.push({ code: 'event-order', where, message: `event ${e.seq} comes after event ${b.events![i - 1]?.seq}` });
      else problems.push({ code: 'event-missing', where, message: `expected event ${i + 1} here, found ${e.seq}: an event is missing` });
    }
    if (e.redacted === true) {
      // Its content is not here to hash: the next prevHash, its inclusion proof and the statement vouch for the hash.
      if (e.type !== null || e.at !== null || e.data !== null) problems.push({ code: 'redaction', where, message: 'a redacted event carries a type, time or data' });
      if (!isHex64(e.hash)) problems.push({ code: 'event-hash', where, message: 'the hash of the redacted event is not a SHA-256' });
    } else if (shownHash(b.messageId!, e) !== e.hash) {
      problems.push({ code: 'event-hash', where, message: `the hash does not match the event's content (type, time, data or prevHash)` });
    }
    if (e.prevHash !== prev) problems.push({ code: 'chain-link', where, message: `prevHash is not the hash of the event before` });
    prev = e.hash;
  });

  // What the sender sent: the SEALED event's document hashes.
  const sealed = b.events.find((e) => e.redacted !== true && e.type === 'SEALED');
  if (sealed && !sealed.redacted) {
    const d = sealed.data as { manifestSha256?: unknown; documents?: unknown };
    if (canonicalJson(d.documents ?? []) !== canonicalJson(b.documents ?? []) || (d.manifestSha256 ?? null) !== (b.manifestSha256 ?? null)) {
      problems.push({ code: 'documents', where: `event ${sealed.seq}`, message: 'the documents listed differ from those in the SEALED event' });
    }
  } else if ((b.documents ?? []).length > 0) {
    problems.push({ code: 'documents', where: 'bundle', message: 'documents are listed but there is no SEALED event' });
  }

  // Receipts: signed by the hub, about this letter, naming an event of this chain as it is.
  for (const r of b.receipts) {
    const where = `receipt ${r.id}`;
    const v = await verifyJws(r.jws, keys, RECEIPT_TYP);
    if ('error' in v) {
      problems.push({ code: 'receipt-signature', where, message: v.error });
      continue;
    }
    const p = v.payload as ReceiptPayload;
    if (p.messageId !== b.messageId || p.sender !== b.sender || p.receiptId !== r.id) {
      problems.push({ code: 'receipt-message', where, message: `the receipt is for message ${p.messageId} of sender ${p.sender}, not this one` });
      continue;
    }
    const e = b.events.find((x) => x.seq === p.event?.seq);
    if (!e) problems.push({ code: 'receipt-event', where, message: `the receipt names event ${p.event?.seq}, which the bundle does not hold` });
    else if (e.redacted === true) problems.push({ code: 'receipt-event', where, message: `the receipt names event ${e.seq}, which the bundle redacts` });
    else if (e.hash !== p.event.hash || e.type !== p.event.type || e.prevHash !== p.event.prevHash || e.at !== p.at || canonicalJson(e.data) !== canonicalJson(p.data)) {
      problems.push({ code: 'receipt-event', where, message: `event ${e.seq} differs from the one the receipt signed` });
    }
  }

  // The log: each event the head covers is a leaf of it.
  head = await checkHead(b.head, keys, problems, 'head');
  for (const e of b.events) {
    if (!head || e.leafIndex === null || e.leafIndex === undefined || e.leafIndex >= head.treeSize) {
      pending.push(e.seq);
      continue;
    }
    const proof = Array.isArray(e.inclusionProof) && e.inclusionProof.every(isHex64) ? e.inclusionProof.map((h) => Buffer.from(h, 'hex')) : undefined;
    if (!isHex64(e.hash) || !proof || !verifyInclusion(eventLeaf(e.hash), e.leafIndex, head.treeSize, proof, Buffer.from(head.rootHash, 'hex'))) {
      problems.push({ code: 'inclusion', where: `event ${e.seq}`, message: `event ${e.seq} is not leaf ${e.leafIndex} of the signed head (size ${head.treeSize})` });
    }
  }
  if (b.head && !head) pending.splice(0);

  // The statement: the hub's list of this letter's events, receipts and head, when it made the bundle.
  const s = await verifyJws(b.statement, keys, STATEMENT_TYP);
  if ('error' in s) problems.push({ code: 'statement-signature', where: 'statement', message: s.error });
  else {
    const st = s.payload as StatementPayload;
    const says = (message: string) => problems.push({ code: 'statement', where: 'statement', message });
    if (st.messageId !== b.messageId || st.sender !== b.sender) says(`the statement is about message ${st.messageId}, not this one`);
    const signed = Array.isArray(st.events) ? st.events : [];
    for (const se of signed) {
      const e = b.events.find((x) => x.seq === se.seq);
      if (!e) says(`event ${se.seq} (${se.type ?? 'redacted'}) is missing from the bundle`);
      else if ((e.redacted === true) !== (se.redacted === true)) says(`event ${se.seq} is ${e.redacted === true ? '' : 'not '}redacted, unlike the one the hub listed`);
      else if (e.hash !== se.hash || e.type !== se.type) says(`event ${se.seq} differs from the one the hub listed`);
    }
    for (const e of b.events) if (!signed.some((x) => x.seq === e.seq)) says(`event ${e.seq} was not listed by the hub`);
    if (signed.map((x) => x.seq).join() !== b.events.map((x) => x.seq).join() && signed.length === b.events.length) says('the events are not in the order the hub listed');
    if ([...(st.receipts ?? [])].sort().join() !== b.receipts.map((r) => r.id).sort().join()) says('the receipts differ from those the hub listed');
    if ((st.head?.treeSize ?? null) !== (head?.treeSize ?? null) || (st.head?.rootHash ?? null) !== (head?.rootHash ?? null)) says('the head differs from the one the hub listed');
  }
  return out();
}

/** The answer of GET /v1/evidence/consistency, saved to a file. */
export interface ConsistencyDocument {
  first: SignedHead;
  second: SignedHead;
  proof: string[];
  keys: Keys;
}

/**
 * Checks that the second head extends the first (RFC 9162 2.1.4.2): nothing in the first tree
 * was removed or rewritten. `held` is a head the verifier kept from before; it must be `first`.
 */
export async function verifyConsistencyDocument(input: unknown, opts: { jwks?: Keys; held?: unknown } = {}): Promise<{ valid: boolean; first?: number; second?: number; problems: BundleProblem[] }> {
  try {
    return await checkConsistency(input, opts);
  } catch (err) {
    return { valid: false, problems: [{ code: 'format', where: 'document', message: `malformed document: ${err instanceof Error ? err.message : String(err)}` }] };
  }
}

async function checkConsistency(input: unknown, opts: { jwks?: Keys; held?: unknown }): Promise<{ valid: boolean; first?: number; second?: number; problems: BundleProblem[] }> {
  const problems: BundleProblem[] = [];
  const c = input as Partial<ConsistencyDocument>;
  if (!c || typeof c !== 'object' || !Array.isArray(c.keys?.keys) || !Array.isArray(c.proof)) {
    problems.push({ code: 'format', where: 'document', message: 'not a consistency proof document' });
    return { valid: false, problems };
  }
  checkKeys(c.keys, opts.jwks, problems);
  const first = await checkHead(c.first, c.keys, problems, 'first');
  const second = await checkHead(c.second, c.keys, problems, 'second');
  if (opts.held !== undefined) {
    const held = await checkHead(opts.held, opts.jwks ?? c.keys, problems, 'held head');
    if (held && (held.treeSize !== first?.treeSize || held.rootHash !== first?.rootHash)) {
      problems.push({ code: 'head-mismatch', where: 'first', message: `the first head is not the one you hold (size ${held.treeSize})` });
    }
  }
  if (first && second) {
    const proof = c.proof.every(isHex64) ? c.proof.map((h) => Buffer.from(h, 'hex')) : undefined;
    if (!proof || !verifyConsistency(first.treeSize, second.treeSize, Buffer.from(first.rootHash, 'hex'), Buffer.from(second.rootHash, 'hex'), proof)) {
      problems.push({ code: 'consistency', where: `heads ${first.treeSize} -> ${second.treeSize}`, message: `the head of size ${second.treeSize} does not extend the head of size ${first.treeSize}: events were removed or rewritten` });
    }
  }
  return { valid: problems.length === 0, first: first?.treeSize, second: second?.treeSize, problems };
}
