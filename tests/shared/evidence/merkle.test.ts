import { createHash } from 'node:crypto';
import t from 'tap';
import { extendFrontier, frontierRoot, leafHash, MerkleTree, nodeHash, verifyConsistency, verifyInclusion } from '../../../shared/evidence/merkle.js';

// RFC 9162 section 2.1.1 to 2.1.4, written as the RFC defines them (recursively, on the leaf
// entries), to check the tree, its proofs and the verification algorithms against.
const sha = (...b: Buffer[]) => createHash('sha256').update(Buffer.concat(b)).digest();
const k = (n: number) => {
  let x = 1;
  while (x * 2 < n) x *= 2;
  return x;
};
const MTH = (d: Buffer[]): Buffer => (d.length === 0 ? sha() : d.length === 1 ? sha(Buffer.from([0]), d[0]!) : sha(Buffer.from([1]), MTH(d.slice(0, k(d.length))), MTH(d.slice(k(d.length)))));
const PATH = (m: number, d: Buffer[]): Buffer[] => {
  if (d.length === 1) return [];
  const s = k(d.length);
  return m < s ? [...PATH(m, d.slice(0, s)), MTH(d.slice(s))] : [...PATH(m - s, d.slice(s)), MTH(d.slice(0, s))];
};
const SUBPROOF = (m: number, d: Buffer[], b: boolean): Buffer[] => {
  if (m === d.length) return b ? [] : [MTH(d)];
  const s = k(d.length);
  return m <= s ? [...SUBPROOF(m, d.slice(0, s), b), MTH(d.slice(s))] : [...SUBPROOF(m - s, d.slice(s), false), MTH(d.slice(0, s))];
};

const entries = Array.from({ length: 70 }, (_, i) => Buffer.from(`entry ${i}`));
const tree = MerkleTree.fromLeaves(entries.map(leafHash));
const hex = (b: Buffer[]) => b.map((x) => x.toString('hex'));

t.test('the tree hash, audit paths and consistency proofs are the RFC 9162 ones', async (t) => {
  for (let n = 0; n <= entries.length; n++) {
    const d = entries.slice(0, n);
    const root = MTH(d);
    if (!tree.hash(0, n).equals(root)) t.fail(`MTH of ${n}`);
    if (!frontierRoot(extendFrontier([], 0, d.map(leafHash))).equals(root)) t.fail(`frontier root of ${n}`);
    for (let m = 0; m < n; m++) {
      const path = tree.inclusionProof(m, n);
      if (hex(path).join() !== hex(PATH(m, d)).join()) t.fail(`PATH(${m}, ${n})`);
      if (!verifyInclusion(leafHash(d[m]!), m, n, path, root)) t.fail(`inclusion ${m} in ${n} does not verify`);
    }
    for (let m = 1; m <= n; m++) {
      const proof = tree.consistencyProof(m, n);
      if (hex(proof).join() !== hex(m === n ? [] : SUBPROOF(m, d, true)).join()) t.fail(`PROOF(${m}, ${n})`);
      if (!verifyConsistency(m, n, MTH(entries.slice(0, m)), root, proof)) t.fail(`consistency ${m} -> ${n} does not verify`);
    }
  }
  t.pass('sizes 0..70, every leaf and every pair of sizes');
});

t.test('the frontier extends in steps, as the sequencer appends batches', async (t) => {
  let frontier: Buffer[] = [];
  let size = 0;
  for (const step of [1, 2, 5, 8, 13, 41]) {
    frontier = extendFrontier(frontier, size, entries.slice(size, size + step).map(leafHash));
    size += step;
    t.same(frontierRoot(frontier).toString('hex'), MTH(entries.slice(0, size)).toString('hex'), `size ${size}`);
  }
});

t.test('the RFC 6962 reference vectors', async (t) => {
  // The test tree of the certificate-transparency reference code: roots of its first n leaves.
  const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];
  const ref = MerkleTree.fromLeaves(leaves.map(leafHash));
  t.same(roots.map((_, i) => ref.hash(0, i + 1).toString('hex')), roots);
  t.equal(MerkleTree.fromLeaves([]).hash().toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'the empty tree is SHA-256 of nothing');
});

t.test('proofs that do not hold are refused', async (t) => {
  const n = 37;
  const root = tree.hash(0, n);
  const path = tree.inclusionProof(5, n);
  t.notOk(verifyInclusion(leafHash(entries[6]!), 5, n, path, root), 'another leaf');
  t.notOk(verifyInclusion(leafHash(entries[5]!), 6, n, path, root), 'another index');
  t.notOk(verifyInclusion(leafHash(entries[5]!), 5, 2 * n, path, root), 'another size (a deeper tree)');
  t.notOk(verifyInclusion(leafHash(entries[5]!), 5, n, path.slice(1), root), 'a shortened path');
  t.notOk(verifyInclusion(leafHash(entries[5]!), n, n, path, root), 'an index outside the tree');
  const c = tree.consistencyProof(20, n);
  t.notOk(verifyConsistency(20, n, tree.hash(0, 19), root, c), 'another first root');
  t.notOk(verifyConsistency(20, n, tree.hash(0, 20), tree.hash(0, n - 1), c), 'another second root');
  t.notOk(verifyConsistency(20, n, tree.hash(0, 20), root, []), 'an empty proof');
  t.notOk(verifyConsistency(n, 20, root, tree.hash(0, 20), c), 'sizes the wrong way round');
  // A log that dropped leaf 3 and appended the rest: the old head cannot be extended to it.
  const dropped = MerkleTree.fromLeaves([...entries.slice(0, 3), ...entries.slice(4, n + 1)].map(leafHash));
  t.notOk(verifyConsistency(20, n, tree.hash(0, 20), dropped.hash(0, n), dropped.consistencyProof(20, n)), 'a log with a leaf removed');
  t.ok(nodeHash(leafHash(entries[0]!), leafHash(entries[1]!)).equals(tree.hash(0, 2)));
});

t.test('the perfect subtrees the frontier completes are the ones proofs need, and suffice', async (t) => {
  const n = 67;
  const nodes = new Map<string, Buffer>();
  let frontier: Buffer[] = [];
  let size = 0;
  for (const step of [3, 1, 12, 29, 22]) {
    frontier = extendFrontier(frontier, size, entries.slice(size, size + step).map(leafHash), (level, index, hash) => nodes.set(`${level}:${index}`, hash));
    size += step;
  }
  t.equal(size, n);
  for (const [key, hash] of nodes) {
    const [level, index] = key.split(':').map(Number) as [number, number];
    if (!hash.equals(tree.hash(index * 2 ** level, (index + 1) * 2 ** level))) t.fail(`node ${key}`);
  }
  t.equal(nodes.size, 32 + 16 + 8 + 4 + 2 + 1 + 1, 'every perfect subtree of 67 leaves above the leaves, once');
  // Leaves for the low levels, stored nodes above: the same proofs as the tree in memory.
  const stored = new MerkleTree(n, (level, index) => (level === 0 ? leafHash(entries[index]!) : nodes.get(`${level}:${index}`)!));
  t.equal(stored.hash().toString('hex'), tree.hash(0, n).toString('hex'));
  t.same(hex(stored.inclusionProof(41, n)), hex(tree.inclusionProof(41, n)));
  t.same(hex(stored.consistencyProof(13, n)), hex(tree.consistencyProof(13, n)));
  const needed = MerkleTree.needs(n, (x) => x.inclusionProof(41, n));
  t.ok(needed.length <= 2 * Math.ceil(Math.log2(n)), `an audit path reads O(log n) subtrees (${needed.length})`);
  t.ok(needed.every(([level, index]) => (index + 1) * 2 ** level <= n), 'all inside the tree');
});
