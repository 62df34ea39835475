import type { JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { HubKeys } from '../crypto/hub-keys.js';
import { hexList, latestHead, withTree, type SignedHead } from './log.js';
import { senderMaySee } from './sender-view.js';

/**
 * The evidence bundle of one letter (docs/evidence.md): everything needed to check, offline,
 * what the hub says happened to it. Verified by `verifyBundle` (shared/evidence/verify-bundle.ts,
 * `postbud verify --bundle`) and by the independent `scripts/verify-bundle.py`.
 */
export const BUNDLE_FORMAT = 'postbud-evidence-bundle/1';
export const STATEMENT_TYP = 'postbud-evidence+jws';

/** What every event of a bundle carries, shown or redacted: enough to link the chain and the log. */
interface EventLinks {
  seq: number;
  prevHash: string | null;
  hash: string;
  /** Its leaf in the log, or null while the sequencer has not taken it yet. */
  leafIndex: number | null;
  /** The audit path (RFC 9162 2.1.3) against `head`, or null when the head does not cover it. */
  inclusionProof: string[] | null;
}

export interface ShownEvent extends EventLinks {
  redacted: false;
  type: string;
  at: string;
  data: Record<string, unknown>;
}

/**
 * An event the sender may not see (`senderMaySee`: an OPENED the letter did not ask a receipt
 * for): its place in the chain and the log, without its type, time or data.
 */
export interface RedactedEvent extends EventLinks {
  redacted: true;
  type: null;
  at: null;
  data: null;
}

export type BundleEvent = ShownEvent | RedactedEvent;

export interface EvidenceBundle {
  format: typeof BUNDLE_FORMAT;
  messageId: string;
  sender: string;
  generatedAt: string;
  /** From the SEALED event: the SHA-256 of manifest.json and of each document, in order. */
  manifestSha256: string | null;
  documents: { sha256: string; size: number }[];
  events: BundleEvent[];
  receipts: { id: string; type: string; jws: string }[];
  head: SignedHead | null;
  /** A hub signature over the list of events, receipts and the head: nothing can be left out. */
  statement: string;
  /** The public keys of every signature above (also in /.well-known/jwks.json). */
  keys: { keys: JWK[] };
}

export type StatementEvent = { seq: number; type: string; hash: string; redacted?: undefined } | { seq: number; type: null; hash: string; redacted: true };

/** How the statement lists an event: a redacted one without its type. */
export const statementEvent = (e: BundleEvent): StatementEvent => (e.redacted ? { seq: e.seq, type: null, hash: e.hash, redacted: true } : { seq: e.seq, type: e.type, hash: e.hash });

/** What the statement JWS signs. */
export interface StatementPayload {
  messageId: string;
  sender: string;
  generatedAt: string;
  /** A redacted event is listed as {seq, type: null, hash, redacted: true}. */
  events: StatementEvent[];
  receipts: string[];
  head: { treeSize: number; rootHash: string } | null;
}

const kidOf = (jws: string): string | undefined => {
  try {
    return (JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: string }).kid;
  } catch {
    return undefined;
  }
};

/** The public keys that verify the given signatures, from the hub's published ones. */
export async function keysFor(hub: HubKeys, jwss: readonly string[]): Promise<{ keys: JWK[] }> {
  const kids = new Set(jwss.map(kidOf));
  return { keys: (await hub.jwks()).keys.filter((k) => kids.has(k.kid)) };
}

/** The bundle of a message whose events exist; the caller checks it is the sender's. */
export async function buildBundle(db: Kysely<Database>, hub: HubKeys, messageId: string, sender: string): Promise<EvidenceBundle> {
  const [letter, rows, allReceipts, head] = await Promise.all([
    db.selectFrom('messages').select('open_receipt').where('id', '=', messageId).executeTakeFirst(),
    db.selectFrom('message_events').select(['seq', 'type', 'at', 'data', 'prev_hash', 'hash', 'leaf_index']).where('message_id', '=', messageId).orderBy('seq').execute(),
    db.selectFrom('receipts').select(['id', 'type', 'jws', 'event_seq']).where('message_id', '=', messageId).orderBy('event_seq').orderBy('id').execute(),
    latestHead(db),
  ]);
  // What the sender may not see is redacted, never left out: the chain and the log still link.
  const shown = (type: string) => senderMaySee(type, { openReceipt: letter?.open_receipt ?? false });
  const hidden = new Set(rows.filter((r) => !shown(r.type)).map((r) => r.seq));
  const receipts = allReceipts.filter((r) => !hidden.has(r.event_seq));
  const inHead = (leafIndex: string | null) => head !== undefined && leafIndex !== null && Number(leafIndex) < head.treeSize;
  const covered = rows.filter((r) => inHead(r.leaf_index)).map((r) => Number(r.leaf_index));
  // One read of the subtrees all the audit paths need. Missing ones (the log was damaged behind
  // the triggers) leave the proofs out: the verifier then says which events are not in the log.
  const proofs = new Map<number, string[]>();
  if (head && covered.length > 0) {
    const { result } = await withTree(db, head.treeSize, (tree) => covered.map((i) => tree.inclusionProof(i, head.treeSize)));
    result?.forEach((p, k) => proofs.set(covered[k]!, hexList(p)));
  }
  const events: BundleEvent[] = rows.map((r) => {
    const leafIndex = r.leaf_index === null ? null : Number(r.leaf_index);
    const links = { seq: r.seq, prevHash: r.prev_hash, hash: r.hash, leafIndex, inclusionProof: leafIndex !== null && inHead(r.leaf_index) ? (proofs.get(leafIndex) ?? []) : null };
    return hidden.has(r.seq) ? { ...links, redacted: true, type: null, at: null, data: null } : { ...links, redacted: false, type: r.type, at: r.at.toISOString(), data: r.data };
  });
  const sealed = rows.find((r) => r.type === 'SEALED' && !hidden.has(r.seq))?.data as { manifestSha256?: string; documents?: { sha256: string; size: number }[] } | undefined;
  const generatedAt = new Date().toISOString();
  const statement: StatementPayload = {
    messageId,
    sender,
    generatedAt,
    events: events.map(statementEvent),
    receipts: receipts.map((r) => r.id),
    head: head ? { treeSize: head.treeSize, rootHash: head.rootHash } : null,
  };
  const statementJws = await hub.sign(Buffer.from(JSON.stringify(statement)), { typ: STATEMENT_TYP });
  const signatures = [statementJws, ...receipts.map((r) => r.jws), ...(head ? [head.jws] : [])];
  return {
    format: BUNDLE_FORMAT,
    messageId,
    sender,
    generatedAt,
    manifestSha256: sealed?.manifestSha256 ?? null,
    documents: sealed?.documents ?? [],
    events,
    receipts: receipts.map((r) => ({ id: r.id, type: r.type, jws: r.jws })),
    head: head ?? null,
    statement: statementJws,
    keys: await keysFor(hub, signatures),
  };
}
