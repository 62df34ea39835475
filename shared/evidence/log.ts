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
    const frontier = extendFrontier(last?.frontier ?? [], size, rows.map((r) => eventLeaf(r.hash)));
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

/**
 * The tree of the first `size` leaves, from the events (and the leaves of purged events) as the
 * database holds them now. It reads every leaf hash (32 bytes each): fine for millions of
 * events, the next step beyond is storing perfect subtrees (docs/evidence.md). `complete` is
 * false when leaves are missing: someone removed events behind the triggers' back.
 */
export async function loadTree(db: Kysely<Database>, size: number): Promise<{ tree: MerkleTree; complete: boolean }> {
  const { rows } = await sql<{ leaf_index: string; hash: string }>`
    select leaf_index, hash from message_events where leaf_index < ${size}
    union all
    select leaf_index, hash from evidence_retired_leaves where leaf_index < ${size}
    order by leaf_index`.execute(db);
  const complete = rows.length === size && rows.every((r, i) => Number(r.leaf_index) === i);
  return { tree: new MerkleTree(rows.map((r) => eventLeaf(r.hash))), complete };
}

export const hexList = (proof: readonly Buffer[]): string[] => proof.map((b) => b.toString('hex'));
