import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import type { HubKeys } from '../crypto/hub-keys.js';
import { extendFrontier, frontierRoot, leafHash, MerkleTree } from './merkle.js';

/**
 * The Merkle log over all events (docs/evidence.md). Events are written by whoever appends
 * them (intake, storage, notification) and cost those writers nothing more; the storage
 * service's sequencer takes the events committed since its last run, in (at, messageId, seq)
 * order, gives each the next leaf index, and signs a tree head over the grown log. The leaf
 * entry is the event's 32-byte hash, so leaf = SHA-256(0x00 || eventHash).
 */

export const HEAD_TYP = 'postbud-tree-head+jws';
export const LOG_ID = 'postbud-evidence-log';

/** What a tree head signs. */
export interface TreeHead {
  log: string;
  treeSize: number;
  rootHash: string;
  timestamp: string;
}

export interface SignedHead extends TreeHead {
  jws: string;
}

/** Perfect subtrees of 2^NODE_MIN_LEVEL leaves and more are stored; smaller ones are hashed from leaves. */
export const NODE_MIN_LEVEL = 4;

/** Leaves hashed, or node rows inserted, between two turns of the event loop. */
const SLICE = 500;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export const eventLeaf = (eventHash: string): Buffer => leafHash(Buffer.from(eventHash, 'hex'));

const toHead = (r: { tree_size: string | number; root_hash: string; signed_at: Date; jws: string }): SignedHead => ({
  log: LOG_ID,
  treeSize: Number(r.tree_size),
  rootHash: r.root_hash,
  timestamp: r.signed_at.toISOString(),
  jws: r.jws,
});

async function signHead(hub: HubKeys, head: TreeHead): Promise<string> {
  return hub.sign(Buffer.from(JSON.stringify(head)), { typ: HEAD_TYP });
}

/**
 * One sequencer run: takes up to `batch` events not yet in the log, in order, gives them leaf
 * indexes and signs the new head, in one transaction. Several processes may run it; one at a
 * time does (the others return at once). Returns the new head, or undefined when nothing was
 * added (a first, empty head is signed when the log has none).
 */
export async function sequenceEvents(db: Kysely<Database>, hub: HubKeys, opts: { batch?: number } = {}): Promise<{ head?: SignedHead; added: number; busy?: boolean }> {
  const batch = opts.batch ?? 5000;
  await hub.signingKey();
  return db.transaction().execute(async (trx) => {
    const { rows: lock } = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(hashtextextended('postbud.evidence_log', 0)) as ok`.execute(trx);
    if (!lock[0]?.ok) return { added: 0, busy: true };
    const last = await trx.selectFrom('evidence_heads').selectAll().orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
    const size = Number(last?.tree_size ?? 0);
    const { rows } = await sql<{ leaf_index: string; hash: string }>`
      with picked as (
        select message_id, seq from message_events where leaf_index is null order by at, message_id, seq limit ${batch}
      ), numbered as (
        select message_id, seq, row_number() over (order by e.at, e.message_id, e.seq) - 1 as rn
        from picked join message_events e using (message_id, seq)
      )
      update message_events e set leaf_index = ${size} + n.rn
      from numbered n where e.message_id = n.message_id and e.seq = n.seq
      returning e.leaf_index, e.hash`.execute(trx);
    if (rows.length === 0 && last) return { added: 0 };
    rows.sort((a, b) => Number(a.leaf_index) - Number(b.leaf_index));
    const nodes: { level: number; idx: number; hash: Buffer }[] = [];
    let frontier = last?.frontier ?? [];
    // In slices with a turn of the event loop between them: the sequencer shares its process with
    // the intake under `postbud start`, and hashing a whole run at once (5,000 leaves and their
    // nodes) held that loop for tens of milliseconds, every letter arriving meanwhile waiting.
    for (let i = 0; i < rows.length; i += SLICE) {
      if (i > 0) await yieldToLoop();
      const leaves = rows.slice(i, i + SLICE).map((r) => eventLeaf(r.hash));
      frontier = extendFrontier(frontier, size + i, leaves, (level, idx, hash) => {
        if (level >= NODE_MIN_LEVEL) nodes.push({ level, idx, hash });
      });
    }
    for (let i = 0; i < nodes.length; i += SLICE) await trx.insertInto('evidence_log_nodes').values(nodes.slice(i, i + SLICE)).execute();
    const signedAt = new Date();
    const head: TreeHead = { log: LOG_ID, treeSize: size + rows.length, rootHash: frontierRoot(frontier).toString('hex'), timestamp: signedAt.toISOString() };
    const jws = await signHead(hub, head);
    await trx.insertInto('evidence_heads').values({ tree_size: head.treeSize, root_hash: head.rootHash, signed_at: signedAt, jws, frontier }).execute();
    return { head: { ...head, jws }, added: rows.length };
  });
}

/** Runs the sequencer until the log has caught up with every committed event. */
export async function sequenceAll(db: Kysely<Database>, hub: HubKeys, opts: { batch?: number } = {}): Promise<{ head?: SignedHead; added: number }> {
  let added = 0;
  let head: SignedHead | undefined;
  for (;;) {
    const r = await sequenceEvents(db, hub, opts);
    added += r.added;
    head = r.head ?? head;
    if (r.busy || r.added < (opts.batch ?? 5000)) return { head, added };
  }
}

export async function latestHead(db: Kysely<Database>): Promise<SignedHead | undefined> {
  const r = await db.selectFrom('evidence_heads').select(['tree_size', 'root_hash', 'signed_at', 'jws']).orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
  return r && toHead(r);
}

export async function headOfSize(db: Kysely<Database>, treeSize: number): Promise<SignedHead | undefined> {
  const r = await db.selectFrom('evidence_heads').select(['tree_size', 'root_hash', 'signed_at', 'jws']).where('tree_size', '=', String(treeSize) as never).executeTakeFirst();
  return r && toHead(r);
}

/** Published heads in order of size, after `after` (a tree size). */
export async function listHeads(db: Kysely<Database>, q: { after?: number; limit: number }): Promise<SignedHead[]> {
  const rows = await db
    .selectFrom('evidence_heads')
    .select(['tree_size', 'root_hash', 'signed_at', 'jws'])
    .where('tree_size', '>', String(q.after ?? -1) as never)
    .orderBy('tree_size')
    .limit(q.limit)
    .execute();
  return rows.map(toHead);
}

/** Leaf hashes by index, from the events and the leaves of purged events. */
async function leavesAt(db: Kysely<Database>, indexes: readonly number[]): Promise<Map<number, Buffer>> {
  if (indexes.length === 0) return new Map();
  const { rows } = await sql<{ leaf_index: string; hash: string }>`
    select leaf_index, hash from message_events where leaf_index = any(${sql.val(indexes)}::bigint[])
    union all
    select leaf_index, hash from evidence_retired_leaves where leaf_index = any(${sql.val(indexes)}::bigint[])`.execute(db);
  return new Map(rows.map((r) => [Number(r.leaf_index), eventLeaf(r.hash)]));
}

/**
 * Runs `use` (proof making) on the tree of the first `size` leaves, reading only what it needs:
 * the stored perfect subtrees it touches and, below level NODE_MIN_LEVEL, their leaves (O(log n)
 * rows in two queries). `complete` is false when something it needs is missing (events removed
 * behind the triggers' back); `use` is not run then.
 */
export async function withTree<R>(db: Kysely<Database>, size: number, use: (tree: MerkleTree) => R): Promise<{ complete: boolean; result?: R }> {
  const needs = MerkleTree.needs(size, use);
  const stored = needs.filter(([l]) => l >= NODE_MIN_LEVEL);
  const low = needs.filter(([l]) => l < NODE_MIN_LEVEL);
  const have = new Map<string, Buffer>();
  if (stored.length > 0) {
    const { rows } = await sql<{ level: number; idx: string; hash: Buffer }>`
      select n.level, n.idx, n.hash from evidence_log_nodes n
      join unnest(${sql.val(stored.map(([l]) => l))}::smallint[], ${sql.val(stored.map(([, i]) => i))}::bigint[]) as w(level, idx)
        on n.level = w.level and n.idx = w.idx`.execute(db);
    for (const r of rows) have.set(`${r.level}:${r.idx}`, r.hash);
  }
  const span = (l: number, i: number) => Array.from({ length: 2 ** l }, (_, k) => i * 2 ** l + k);
  const leaves = await leavesAt(db, low.flatMap(([l, i]) => span(l, i)));
  for (const [l, i] of low) {
    const hashes = span(l, i).map((k) => leaves.get(k));
    if (hashes.every((h) => h !== undefined)) have.set(`${l}:${i}`, MerkleTree.fromLeaves(hashes as Buffer[]).hash());
  }
  if (needs.some(([l, i]) => !have.has(`${l}:${i}`))) return { complete: false };
  return { complete: true, result: use(new MerkleTree(size, (l, i) => have.get(`${l}:${i}`)!)) };
}

/**
 * The whole tree of the first `size` leaves, from every leaf as the database holds it now (O(n):
 * for audits and tests, not for serving proofs). `complete` is false when leaves are missing.
 */
export async function loadTree(db: Kysely<Database>, size: number): Promise<{ tree: MerkleTree; complete: boolean }> {
  const { rows } = await sql<{ leaf_index: string; hash: string }>`
    select leaf_index, hash from message_events where leaf_index < ${size}
    union all
    select leaf_index, hash from evidence_retired_leaves where leaf_index < ${size}
    order by leaf_index`.execute(db);
  const complete = rows.length === size && rows.every((r, i) => Number(r.leaf_index) === i);
  return { tree: MerkleTree.fromLeaves(rows.map((r) => eventLeaf(r.hash))), complete };
}

export const hexList = (proof: readonly Buffer[]): string[] => proof.map((b) => b.toString('hex'));

/**
 * Recomputes the latest signed head from every event the database holds (O(n)): whether the
 * database still holds exactly what the hub signed. Proofs are served from stored subtrees, so
 * this is what notices an event removed or edited behind the triggers' back inside them.
 */
export async function auditLog(db: Kysely<Database>): Promise<{ treeSize: number; ok: boolean; problem?: string }> {
  const head = await latestHead(db);
  if (!head) return { treeSize: 0, ok: true };
  const { tree, complete } = await loadTree(db, head.treeSize);
  if (!complete) return { treeSize: head.treeSize, ok: false, problem: `the log holds ${tree.size} of the ${head.treeSize} leaves of the latest head` };
  if (tree.hash().toString('hex') !== head.rootHash) return { treeSize: head.treeSize, ok: false, problem: 'the events no longer hash to the root of the latest head' };
  return { treeSize: head.treeSize, ok: true };
}
