import { createHash } from 'node:crypto';

/**
 * A Merkle tree in the manner of RFC 9162 section 2.1 (certificate transparency v2):
 * leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right), and a tree of n leaves
 * splits at k, the largest power of two smaller than n. Proof generation and the verification
 * algorithms of sections 2.1.3.2 and 2.1.4.2, over 32-byte hashes (Buffers).
 */

/** Sizes and indexes stay below 2^53 but may pass 2^31, so no bitwise operators. */
const isPowerOfTwo = (n: number) => n >= 1 && 2 ** Math.round(Math.log2(n)) === n;

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export const leafHash = (entry: Uint8Array): Buffer => sha256(LEAF, entry);
export const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer => sha256(NODE, left, right);
export const emptyRoot = (): Buffer => sha256();

/** The largest power of two smaller than n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * A tree of `size` leaves whose perfect, aligned subtrees come from `node(level, index)`
 * (level 0: the leaf hashes; a node at level l covers leaves [index * 2^l, (index + 1) * 2^l)).
 * The hash of any range, and so every proof, needs O(log n) of them.
 */
export class MerkleTree {
  constructor(
    readonly size: number,
    private readonly node: (level: number, index: number) => Buffer,
  ) {}

  /** A tree held in memory: every level hashed once from the leaves (O(n)). */
  static fromLeaves(leafHashes: readonly Buffer[]): MerkleTree {
    const levels: Buffer[][] = [leafHashes.slice()];
    for (let lvl = levels[0]!; lvl.length >= 2; ) {
      const next: Buffer[] = [];
      for (let i = 0; i + 1 < lvl.length; i += 2) next.push(nodeHash(lvl[i]!, lvl[i + 1]!));
      levels.push(next);
      lvl = next;
    }
    return new MerkleTree(leafHashes.length, (level, index) => levels[level]![index]!);
  }

  /**
   * The perfect subtrees (level, index) that `use` reads from a tree of `size` leaves, found by
   * running it once on placeholders: proofs have the same shape whatever the hashes are.
   */
  static needs(size: number, use: (tree: MerkleTree) => unknown): [level: number, index: number][] {
    const seen = new Map<string, [number, number]>();
    const zero = Buffer.alloc(32);
    use(
      new MerkleTree(size, (level, index) => {
        seen.set(`${level}:${index}`, [level, index]);
        return zero;
      }),
    );
    return [...seen.values()];
  }

  /** MTH(D[start:end]). */
  hash(start = 0, end = this.size): Buffer {
    const n = end - start;
    if (n === 0) return emptyRoot();
    if (isPowerOfTwo(n) && start % n === 0) {
      return this.node(Math.round(Math.log2(n)), start / n);
    }
    const k = splitPoint(n);
    return nodeHash(this.hash(start, start + k), this.hash(start + k, end));
  }

  /** PATH(m, D[0:n]): the audit path of leaf m in the tree of the first n leaves. */
  inclusionProof(m: number, n = this.size): Buffer[] {
    if (!(m >= 0 && m < n && n <= this.size)) throw new RangeError(`no leaf ${m} in a tree of ${n}`);
    const path: Buffer[] = [];
    const walk = (m: number, start: number, end: number): void => {
      const size = end - start;
      if (size <= 1) return;
      const k = splitPoint(size);
      if (m < k) {
        walk(m, start, start + k);
        path.push(this.hash(start + k, end));
      } else {
        walk(m - k, start + k, end);
        path.push(this.hash(start, start + k));
      }
    };
    walk(m, 0, n);
    return path;
  }

  /** PROOF(m, D[0:n]): the consistency proof between the trees of the first m and n leaves. */
  consistencyProof(m: number, n = this.size): Buffer[] {
    if (!(m >= 0 && m <= n && n <= this.size)) throw new RangeError(`no consistency from ${m} to ${n}`);
    if (m === 0 || m === n) return [];
    const proof: Buffer[] = [];
    const sub = (m: number, start: number, end: number, whole: boolean): void => {
      const size = end - start;
      if (m === size) {
        if (!whole) proof.push(this.hash(start, end));
        return;
      }
      const k = splitPoint(size);
      if (m <= k) {
        sub(m, start, start + k, whole);
        proof.push(this.hash(start + k, end));
      } else {
        sub(m - k, start + k, end, false);
        proof.push(this.hash(start, start + k));
      }
    };
    sub(m, 0, n, true);
    return proof;
  }
}

/**
 * The right edge of a tree: the roots of its perfect subtrees, largest (leftmost) first, one per
 * set bit of its size. Enough to append leaves and compute the new root without the old leaves.
 */
export function extendFrontier(frontier: readonly Buffer[], size: number, leaves: readonly Buffer[], onNode?: (level: number, index: number, hash: Buffer) => void): Buffer[] {
  const stack = frontier.slice();
  let n = size;
  for (const leaf of leaves) {
    let h = leaf;
    // Merge with equal-sized subtrees: one per trailing set bit of n. Each merge completes a
    // perfect subtree, one level up.
    let level = 0;
    for (let bits = n; bits % 2 === 1; bits = Math.floor(bits / 2)) {
      h = nodeHash(stack.pop()!, h);
      level++;
      onNode?.(level, Math.floor(n / 2 ** level), h);
    }
    stack.push(h);
    n++;
  }
  return stack;
}

export function frontierRoot(frontier: readonly Buffer[]): Buffer {
  if (frontier.length === 0) return emptyRoot();
  let acc = frontier[frontier.length - 1]!;
  for (let i = frontier.length - 2; i >= 0; i--) acc = nodeHash(frontier[i]!, acc);
  return acc;
}

const lsb = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

/** RFC 9162 2.1.3.2: does `proof` show `leaf` at `index` in the tree of `size` with `root`? */
export function verifyInclusion(leaf: Buffer, index: number, size: number, proof: readonly Buffer[], root: Buffer): boolean {
  if (!(Number.isInteger(index) && Number.isInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 2.1.4.2: does `proof` show the tree (second, secondRoot) extends (first, firstRoot)? */
export function verifyConsistency(first: number, second: number, firstRoot: Buffer, secondRoot: Buffer, proof: readonly Buffer[]): boolean {
  if (!(Number.isInteger(first) && Number.isInteger(second) && first >= 0 && first <= second)) return false;
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  if (first === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : proof.slice();
  let fn = first - 1;
  let sn = second - 1;
  while (lsb(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return fr.equals(firstRoot) && sr.equals(secondRoot) && sn === 0;
}
