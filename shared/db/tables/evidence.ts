import type { ColumnType } from 'kysely';

/** Signed tree heads of the Merkle log over all events (docs/evidence.md); append-only. */
export interface EvidenceHeadsTable {
  tree_size: ColumnType<string, number, never>;
  root_hash: string;
  signed_at: Date;
  jws: string;
  /** The roots of the tree's perfect subtrees, largest first: enough to extend it. */
  frontier: Buffer[];
}

/** What the retention process leaves of a message's evidence: a signed tombstone. */
export interface EvidenceTombstonesTable {
  message_id: string;
  sender_orgnr: string;
  purged_at: Date;
  jws: string;
}

/** The leaves of purged events, so the log's tree is unchanged by a purge. */
export interface EvidenceRetiredLeavesTable {
  leaf_index: ColumnType<string, number, never>;
  message_id: string;
  seq: number;
  hash: string;
}

/** Hashes of the log's perfect subtrees, level >= 4 (a node at level l covers 2^l leaves). */
export interface EvidenceLogNodesTable {
  level: number;
  idx: ColumnType<string, number, never>;
  hash: Buffer;
}
