import type { JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { HubKeys } from '../crypto/hub-keys.js';
import { hexList, latestHead, withTree, type SignedHead } from './log.js';

/**
 * The evidence bundle of one letter (docs/evidence.md): everything needed to check, offline,
 * what the hub says happened to it. Verified by `verifyBundle` (shared/evidence/verify-bundle.ts,
 * `postbud verify --bundle`) and by the independent `scripts/verify-bundle.py`.
 */
export const BUNDLE_FORMAT = 'postbud-evidence-bundle/1';
export const STATEMENT_TYP = 'postbud-evidence+jws';

export interface BundleEvent {
  seq: number;
  type: string;
  at: string;
  data: Record<string, unknown>;
  prevHash: string | null;
  hash: string;
  /** Its leaf in the log, or null while the sequencer has not taken it yet. */
  leafIndex: number | null;
  /** The audit path (RFC 9162 2.1.3) against `head`, or null when the head does not cover it. */
  inclusionProof: string[] | null;
}

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

/** What the statement JWS signs. */
export interface StatementPayload {
  messageId: string;
  sender: string;
  generatedAt: string;
  events: { seq: number; type: string; hash: string }[];
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
  const [rows, receipts, head] = await Promise.all([
    db.selectFrom('message_events').select(['seq', 'type', 'at', 'data', 'prev_hash', 'hash', 'leaf_index']).where('message_id', '=', messageId).orderBy('seq').execute(),
    db.selectFrom('receipts').select(['id', 'type', 'jws', 'event_seq']).where('message_id', '=', messageId).orderBy('event_seq').orderBy('id').execute(),
    latestHead(db),
  ]);
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
    return {
      seq: r.seq,
      type: r.type,
      at: r.at.toISOString(),
      data: r.data,
      prevHash: r.prev_hash,
      hash: r.hash,
      leafIndex,
      inclusionProof: leafIndex !== null && inHead(r.leaf_index) ? (proofs.get(leafIndex) ?? []) : null,
    };
  });
  const sealed = rows.find((r) => r.type === 'SEALED')?.data as { manifestSha256?: string; documents?: { sha256: string; size: number }[] } | undefined;
  const generatedAt = new Date().toISOString();
  const statement: StatementPayload = {
    messageId,
    sender,
    generatedAt,
    events: events.map((e) => ({ seq: e.seq, type: e.type, hash: e.hash })),
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
