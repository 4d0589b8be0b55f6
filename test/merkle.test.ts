// Example-based tests of the Merkle module and the compact range: known
// answers worked out from the RFC 9162 definitions, RFC 9162 2.1.5's own
// example, and exhaustive cross-checks of the fast code (proofs read from
// perfect subtrees) against a literal transcription of the RFC's recursive
// definitions over all leaves.

import t from 'tap';
import { createHash } from 'node:crypto';

import {
  EMPTY_ROOT,
  HASH_SIZE,
  MerkleError,
  consistencyProof,
  consistencyProofAsync,
  consistencyProofNodes,
  foldRight,
  hashEqual,
  inclusionProof,
  inclusionProofAsync,
  inclusionProofNodes,
  leafHash,
  nodeHash,
  rootFromLeafHashes,
  treeRoot,
  treeRootAsync,
  treeRootNodes,
  verifyConsistency,
  verifyInclusion,
  type NodeReader,
} from '../broker/log/merkle.js';
import { CompactRange } from '../broker/log/compact-range.js';
import { throwsWith } from './helpers/assert-error.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
const hexes = (bs: readonly Uint8Array[]): string[] => bs.map(hex);

/** SHA-256 over the concatenation, spelled out independently of the module. */
const sha = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

const entry = (i: number): Uint8Array => new TextEncoder().encode(`liaison test entry ${i}`);

/** All perfect-subtree hashes of a tree of n leaves: levels[l][i] = node (l, i). */
interface Tree {
  leaves: Uint8Array[];
  levels: Uint8Array[][];
}

function buildTree(n: number): Tree {
  const leaves = Array.from({ length: n }, (_, i) => leafHash(entry(i)));
  const levels = [leaves];
  for (let l = 0; levels[l]!.length > 1; l++) {
    const below = levels[l]!;
    const above: Uint8Array[] = [];
    for (let i = 0; i + 1 < below.length; i += 2) above.push(nodeHash(below[i]!, below[i + 1]!));
    levels.push(above);
  }
  return { leaves, levels };
}

/**
 * A reader over `tree` that serves only perfect subtrees inside the first
 * `size` leaves – anything else is a bug in the module – and counts reads.
 */
function strictReader(tree: Tree, size: number): NodeReader & { reads: number } {
  const read = (level: number, index: number): Uint8Array => {
    read.reads++;
    if (!Number.isSafeInteger(level) || !Number.isSafeInteger(index) || level < 0 || index < 0) {
      throw new Error(`bad coordinates ${level},${index}`);
    }
    if ((index + 1) * 2 ** level > size)
      throw new Error(`node ${level},${index} is not a perfect subtree of size ${size}`);
    return tree.levels[level]![index]!;
  };
  read.reads = 0;
  return read;
}

// --- RFC 9162 2.1.1-2.1.4, transcribed literally over the list of leaf hashes ---

const k = (n: number): number => {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
};

function refMTH(d: readonly Uint8Array[]): Uint8Array {
  if (d.length === 0) return sha();
  if (d.length === 1) return d[0]!;
  return sha(bytes(0x01), refMTH(d.slice(0, k(d.length))), refMTH(d.slice(k(d.length))));
}

/** PATH(m, D[n]), RFC 9162 2.1.3.1. */
function refPath(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  if (d.length === 1) return [];
  const kk = k(d.length);
  return m < kk
    ? [...refPath(m, d.slice(0, kk)), refMTH(d.slice(kk))]
    : [...refPath(m - kk, d.slice(kk)), refMTH(d.slice(0, kk))];
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 9162 2.1.4.1. */
function refSubproof(m: number, d: readonly Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [refMTH(d)];
  const kk = k(d.length);
  return m <= kk
    ? [...refSubproof(m, d.slice(0, kk), b), refMTH(d.slice(kk))]
    : [...refSubproof(m - kk, d.slice(kk), false), refMTH(d.slice(0, kk))];
}

const bitLength = (n: number): number => (n === 0 ? 0 : Math.floor(Math.log2(n)) + 1);

const BIG = buildTree(300);
const REF_ROOTS = Array.from({ length: 301 }, (_, n) => refMTH(BIG.leaves.slice(0, n)));

t.test('known answers, worked out from the RFC 9162 2.1.1 definitions', async (t) => {
  t.equal(HASH_SIZE, 32);
  // MTH({}) = SHA-256() – the well-known digest of the empty string.
  t.equal(hex(EMPTY_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.equal(hex(rootFromLeafHashes([])), hex(EMPTY_ROOT));
  // Leaf hash of the empty entry = SHA-256(0x00).
  t.equal(hex(leafHash(new Uint8Array(0))), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');

  const a = new TextEncoder().encode('a');
  const b = new TextEncoder().encode('b');
  const la = sha(bytes(0x00, 0x61));
  const lb = sha(bytes(0x00, 0x62));
  const lc = sha(bytes(0x00, 0x63));
  t.equal(hex(leafHash(a)), hex(la), 'leaf = SHA-256(0x00 || entry)');
  t.equal(hex(nodeHash(la, lb)), hex(sha(Uint8Array.from([0x01, ...la, ...lb]))), 'node = SHA-256(0x01 || l || r)');

  // One leaf: MTH({d0}) = SHA-256(0x00 || d0).
  t.equal(hex(rootFromLeafHashes([leafHash(a)])), hex(la));
  // Two leaves: SHA-256(0x01 || leaf(a) || leaf(b)).
  const ab = sha(bytes(0x01), la, lb);
  t.equal(hex(rootFromLeafHashes([leafHash(a), leafHash(b)])), hex(ab));
  // Three leaves: k = 2, so MTH = node(node(a, b), leaf(c)) – not node(a, node(b, c)).
  t.equal(hex(rootFromLeafHashes([la, lb, lc])), hex(sha(bytes(0x01), ab, lc)));

  // Proofs in the 3-leaf tree, by hand.
  const tree: NodeReader = (level, index) => [[la, lb, lc], [ab]][level]![index]!;
  t.same(hexes(inclusionProof(0, 3, tree)), hexes([lb, lc]));
  t.same(hexes(inclusionProof(2, 3, tree)), hexes([ab]));
  t.same(hexes(inclusionProof(0, 1, tree)), [], 'a 1-leaf tree needs no proof');
  t.same(hexes(consistencyProof(1, 2, tree)), hexes([lb]));
  t.same(hexes(consistencyProof(2, 3, tree)), hexes([lc]), 'size 2 is a power of two: its root is not sent');
  t.same(hexes(consistencyProof(1, 3, tree)), hexes([lb, lc]));
  t.ok(verifyInclusion(la, 0, 1, [], la));
  t.ok(verifyConsistency(2, 3, [lc], ab, sha(bytes(0x01), ab, lc)));
});

t.test('RFC 6962 reference tree (leaves "", 00, 10, 2021, ...): roots for sizes 1..8', async (t) => {
  // The CT reference implementation's test tree; the roots were recomputed
  // independently (Python hashlib over the RFC definition) before being pinned.
  const entries = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
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
  const leaves = entries.map((e) => leafHash(unhex(e)));
  const range = CompactRange.empty();
  for (let n = 1; n <= 8; n++) {
    range.append(leaves[n - 1]!);
    t.equal(hex(rootFromLeafHashes(leaves.slice(0, n))), roots[n - 1], `reference root, size ${n}`);
    t.equal(hex(range.root()), roots[n - 1], `compact range root, size ${n}`);
  }
});

t.test('RFC 9162 2.1.5 example: the 7-leaf tree and its proofs', async (t) => {
  const d = Array.from({ length: 7 }, (_, i) => leafHash(entry(i)));
  const [a, b, c, dd, e, f, j] = d as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  const g = nodeHash(a, b);
  const h = nodeHash(c, dd);
  const i = nodeHash(e, f);
  const kk = nodeHash(g, h);
  const l = nodeHash(i, j);
  const root = nodeHash(kk, l);
  const get: NodeReader = (level, index) => [[a, b, c, dd, e, f, j], [g, h, i], [kk]][level]![index]!;
  t.equal(hex(rootFromLeafHashes(d)), hex(root));
  t.equal(hex(treeRoot(7, get)), hex(root));
  // "The inclusion proof for d0 is [b, h, l]", d3 [c, g, l], d4 [f, j, k], d6 [i, k].
  t.same(hexes(inclusionProof(0, 7, get)), hexes([b, h, l]));
  t.same(hexes(inclusionProof(3, 7, get)), hexes([c, g, l]));
  t.same(hexes(inclusionProof(4, 7, get)), hexes([f, j, kk]));
  t.same(hexes(inclusionProof(6, 7, get)), hexes([i, kk]));
  // Consistency: size 3 -> 7 is [c, d, g, l], 4 -> 7 is [l], 6 -> 7 is [i, j, k].
  t.same(hexes(consistencyProof(3, 7, get)), hexes([c, dd, g, l]));
  t.same(hexes(consistencyProof(4, 7, get)), hexes([l]));
  t.same(hexes(consistencyProof(6, 7, get)), hexes([i, j, kk]));
  t.ok(verifyConsistency(3, 7, [c, dd, g, l], rootFromLeafHashes(d.slice(0, 3)), root));
  t.ok(verifyConsistency(4, 7, [l], kk, root));
  t.ok(verifyConsistency(6, 7, [i, j, kk], nodeHash(kk, i), root));
  t.ok(verifyInclusion(j, 6, 7, [i, kk], root));
});

t.test('roots: reference, tree root from nodes, and compact range agree for sizes 0..300', async (t) => {
  const range = CompactRange.empty();
  let failures = 0;
  for (let n = 0; n <= 300; n++) {
    if (n > 0) range.append(BIG.leaves[n - 1]!);
    const reader = strictReader(BIG, n);
    const want = hex(REF_ROOTS[n]!);
    if (hex(rootFromLeafHashes(BIG.leaves.slice(0, n))) !== want) failures++;
    if (hex(treeRoot(n, reader)) !== want) failures++;
    if (reader.reads !== treeRootNodes(n).length || reader.reads > bitLength(n)) failures++;
    if (hex(range.root()) !== want) failures++;
  }
  t.equal(failures, 0);
  t.equal(hex(treeRoot(0, strictReader(BIG, 0))), hex(EMPTY_ROOT));
  t.equal(hex(await treeRootAsync(0, async () => EMPTY_ROOT)), hex(EMPTY_ROOT));
  t.equal(hex(await treeRootAsync(300, async (l, i) => strictReader(BIG, 300)(l, i))), hex(REF_ROOTS[300]!));
});

t.test('inclusion proofs: equal to PATH(m, D[n]), verify, and cost O(log n) reads', async (t) => {
  let checked = 0;
  let failures = 0;
  for (let n = 1; n <= 300; n++) {
    const stride = n <= 130 ? 1 : 7;
    const indices = new Set([n - 1]);
    for (let m = 0; m < n; m += stride) indices.add(m);
    for (const m of indices) {
      const reader = strictReader(BIG, n);
      const proof = inclusionProof(m, n, reader);
      checked++;
      if (!verifyInclusion(BIG.leaves[m]!, m, n, proof, REF_ROOTS[n]!)) failures++;
      // Each proof hash is one perfect node, except the one right-edge hash folded from at most log2(n) nodes.
      if (reader.reads > 2 * bitLength(n)) failures++;
      if (n <= 64 && hexes(refPath(m, BIG.leaves.slice(0, n))).join() !== hexes(proof).join()) failures++;
    }
  }
  t.equal(failures, 0, `${checked} proofs`);
});

t.test('consistency proofs: equal to PROOF(m, D[n]), verify, and cost O(log n) reads', async (t) => {
  let checked = 0;
  let failures = 0;
  const pairs: [number, number][] = [];
  for (let n = 0; n <= 100; n++) for (let m = 0; m <= n; m++) pairs.push([m, n]);
  for (let n = 101; n <= 300; n += 3) for (let m = 0; m <= n; m += 11) pairs.push([m, n], [n - (m % 5), n]);
  for (const [m, n] of pairs) {
    const reader = strictReader(BIG, n);
    const proof = consistencyProof(m, n, reader);
    checked++;
    if (!verifyConsistency(m, n, proof, REF_ROOTS[m]!, REF_ROOTS[n]!)) failures++;
    if (reader.reads > 3 * bitLength(n)) failures++;
    if (m > 0 && n <= 48 && hexes(refSubproof(m, BIG.leaves.slice(0, n), true)).join() !== hexes(proof).join())
      failures++;
    if ((m === 0 || m === n) && proof.length !== 0) failures++;
  }
  t.equal(failures, 0, `${checked} proofs`);
});

t.test('proof node lists: only perfect subtrees, each proof hash a right fold', async (t) => {
  t.same(inclusionProofNodes(0, 1), []);
  t.same(inclusionProofNodes(2, 7), [
    [{ level: 0, index: 3 }],
    [{ level: 1, index: 0 }],
    [
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ],
  ]);
  t.same(consistencyProofNodes(0, 5), []);
  t.same(consistencyProofNodes(5, 5), []);
  t.same(consistencyProofNodes(4, 7), [
    [
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ],
  ]);
  t.same(treeRootNodes(0), []);
  t.same(treeRootNodes(13), [
    { level: 3, index: 0 },
    { level: 2, index: 2 },
    { level: 0, index: 12 },
  ]);
  // Sizes far beyond what fits in memory: coordinates stay exact up to 2^53 - 1.
  const max = Number.MAX_SAFE_INTEGER;
  const nodes = treeRootNodes(max);
  t.equal(nodes.length, 53);
  t.same(nodes[0], { level: 52, index: 0 });
  t.same(nodes[52], { level: 0, index: max - 1 });
  // The last leaf is the lone size-1 subtree: one sibling per other subtree.
  const last = inclusionProofNodes(max - 1, max);
  t.equal(last.length, 52);
  t.same(last[0], [{ level: 1, index: 2 ** 52 - 2 }]);
  t.same(last[51], [{ level: 52, index: 0 }]);
  // Leaf 0 sits at depth 53; its top sibling is the right edge, folded from 52 subtrees.
  const firstLeaf = inclusionProofNodes(0, max);
  t.equal(firstLeaf.length, 53);
  t.same(firstLeaf[0], [{ level: 0, index: 1 }]);
  t.equal(firstLeaf[52]!.length, 52);
  t.same(firstLeaf[52]![0], { level: 51, index: 2 });
  t.same(firstLeaf[52]![51], { level: 0, index: max - 1 });
  t.equal(hex(foldRight([EMPTY_ROOT])), hex(EMPTY_ROOT));
  t.equal(
    hex(foldRight([BIG.leaves[0]!, BIG.leaves[1]!, BIG.leaves[2]!])),
    hex(nodeHash(BIG.leaves[0]!, nodeHash(BIG.leaves[1]!, BIG.leaves[2]!))),
  );
});

t.test('async builders match the sync ones and propagate reader failures', async (t) => {
  for (const [m, n] of [
    [0, 1],
    [5, 17],
    [16, 17],
    [63, 64],
    [100, 300],
    [299, 300],
  ] as const) {
    const reader = strictReader(BIG, n);
    const slow = async (level: number, index: number): Promise<Uint8Array> => {
      await new Promise((r) => setImmediate(r));
      return reader(level, index);
    };
    t.same(hexes(await inclusionProofAsync(m, n, slow)), hexes(inclusionProof(m, n, reader)), `inclusion ${m} ${n}`);
    t.same(
      hexes(await consistencyProofAsync(m, n, slow)),
      hexes(consistencyProof(m, n, reader)),
      `consistency ${m} ${n}`,
    );
  }
  const down = new Error('tile store down');
  await t.rejects(
    inclusionProofAsync(3, 10, async () => Promise.reject(down)),
    down,
  );
  await t.rejects(
    consistencyProofAsync(3, 10, async () => Promise.reject(down)),
    down,
  );
  t.throws(
    () =>
      inclusionProof(3, 10, () => {
        throw down;
      }),
    down,
  );
});

t.test('a reader that returns something other than a 32-byte hash is merkle-bad-state', async (t) => {
  const isBadState = (e: unknown): boolean =>
    e instanceof MerkleError && e.code === 'merkle-bad-state' && e.name === 'MerkleError';
  const short: NodeReader = () => new Uint8Array(31);
  const notBytes = (() => 'ab'.repeat(32)) as unknown as NodeReader;
  throwsWith(t, () => inclusionProof(1, 4, short), MerkleError, 'merkle-bad-state');
  throwsWith(t, () => consistencyProof(3, 4, notBytes), MerkleError, 'merkle-bad-state');
  throwsWith(t, () => treeRoot(5, short), MerkleError, 'merkle-bad-state');
  t.ok(await inclusionProofAsync(1, 4, async () => new Uint8Array(33)).then(() => false, isBadState));
  t.ok(await consistencyProofAsync(1, 4, async () => new Uint8Array(0)).then(() => false, isBadState));
  t.ok(await treeRootAsync(5, async () => new Uint8Array(0)).then(() => false, isBadState));
});

t.test('builders check their preconditions first and throw merkle-bad-argument', async (t) => {
  const never: NodeReader = () => t.fail('the reader must not be called') as never;
  const bad: [string, () => unknown][] = [
    ['index = size', () => inclusionProof(5, 5, never)],
    ['index > size', () => inclusionProof(6, 5, never)],
    ['empty tree', () => inclusionProof(0, 0, never)],
    ['negative index', () => inclusionProof(-1, 5, never)],
    ['fractional index', () => inclusionProof(1.5, 5, never)],
    ['NaN size', () => inclusionProof(0, Number.NaN, never)],
    ['size 2^53', () => inclusionProof(0, 2 ** 53, never)],
    ['infinite size', () => inclusionProof(0, Number.POSITIVE_INFINITY, never)],
    ['string index', () => inclusionProof('1' as unknown as number, 5, never)],
    ['first > second', () => consistencyProof(6, 5, never)],
    ['negative first', () => consistencyProof(-1, 5, never)],
    ['fractional second', () => consistencyProof(1, 5.5, never)],
    ['second 2^53', () => consistencyProof(1, 2 ** 53, never)],
    ['tree root of a negative size', () => treeRoot(-1, never)],
    ['tree root of 2^53', () => treeRootNodes(2 ** 53)],
    ['fold of nothing', () => foldRight([])],
  ];
  for (const [name, f] of bad) {
    throwsWith(t, f, MerkleError, 'merkle-bad-argument', { what: name });
  }
  await t.rejects(
    inclusionProofAsync(2, 2, async () => EMPTY_ROOT),
    { code: 'merkle-bad-argument' },
  );
  await t.rejects(
    consistencyProofAsync(3, 2, async () => EMPTY_ROOT),
    { code: 'merkle-bad-argument' },
  );
  await t.rejects(
    treeRootAsync(1.5, async () => EMPTY_ROOT),
    { code: 'merkle-bad-argument' },
  );
  t.ok(new MerkleError('merkle-bad-argument', 'x') instanceof Error);
});

t.test('verifiers return false, never throw, on malformed input', async (t) => {
  const n = 11;
  const m = 6;
  const leaf = BIG.leaves[m]!;
  const root = REF_ROOTS[n]!;
  const proof = inclusionProof(m, n, strictReader(BIG, n));
  t.ok(verifyInclusion(leaf, m, n, proof, root), 'the unmodified case verifies');
  const junk: unknown[] = [undefined, null, 'x', 1, {}, [], new Uint8Array(31), new Uint8Array(33), Buffer.alloc(0)];
  const any = <T>(v: unknown): T => v as T;
  for (const j of junk) {
    t.notOk(verifyInclusion(any(j), m, n, proof, root));
    t.notOk(verifyInclusion(leaf, m, n, proof, any(j)));
    t.notOk(verifyInclusion(leaf, m, n, any(j), root));
    t.notOk(verifyInclusion(leaf, m, n, [...proof.slice(1), any(j)], root));
  }
  for (const [i, s] of [
    [-1, n],
    [m, -1],
    [m + 0.5, n],
    [m, n + 0.5],
    [Number.NaN, n],
    [m, Number.POSITIVE_INFINITY],
    [n, n],
    [m, 2 ** 53],
  ] as const) {
    t.notOk(verifyInclusion(leaf, i, s, proof, root), `index ${i} size ${s}`);
  }
  t.notOk(verifyInclusion(leaf, 0, 0, [], EMPTY_ROOT), 'nothing is included in the empty tree');
  t.notOk(verifyInclusion(leaf, m, n, [...proof, root], root), 'too long');
  t.notOk(verifyInclusion(leaf, m, n, proof.slice(1), root), 'too short');

  const f = 5;
  const cproof = consistencyProof(f, n, strictReader(BIG, n));
  t.ok(verifyConsistency(f, n, cproof, REF_ROOTS[f]!, root));
  for (const j of junk) {
    t.notOk(verifyConsistency(f, n, any(j), REF_ROOTS[f]!, root));
    t.notOk(verifyConsistency(f, n, cproof, any(j), root));
    t.notOk(verifyConsistency(f, n, cproof, REF_ROOTS[f]!, any(j)));
    t.notOk(verifyConsistency(f, n, [any(j), ...cproof], REF_ROOTS[f]!, root));
  }
  for (const [a, b] of [
    [-1, n],
    [f, -1],
    [f + 0.5, n],
    [f, Number.NaN],
    [n + 1, n],
    [f, 2 ** 53],
  ] as const) {
    t.notOk(verifyConsistency(a, b, cproof, REF_ROOTS[f]!, root), `first ${a} second ${b}`);
  }
  t.notOk(verifyConsistency(f, n, [], REF_ROOTS[f]!, root), 'empty proof for 0 < first < second');
  t.notOk(verifyConsistency(f, n, [...cproof, root], REF_ROOTS[f]!, root), 'too long');
  t.notOk(verifyConsistency(f, n, cproof.slice(0, -1), REF_ROOTS[f]!, root), 'too short');
  t.notOk(
    verifyConsistency(4, n, [REF_ROOTS[4]!, ...consistencyProof(4, n, strictReader(BIG, n))], REF_ROOTS[4]!, root),
    'power-of-two first root sent although the verifier adds it',
  );

  // first = second: empty proof, equal roots.
  t.ok(verifyConsistency(n, n, [], root, root));
  t.notOk(verifyConsistency(n, n, [], root, REF_ROOTS[f]!));
  t.notOk(verifyConsistency(n, n, [root], root, root));
  // first = 0: empty proof, and the first root is the empty-tree root.
  t.ok(verifyConsistency(0, n, [], EMPTY_ROOT, root));
  t.ok(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT));
  t.notOk(verifyConsistency(0, n, [], root, root));
  t.notOk(verifyConsistency(0, n, [root], EMPTY_ROOT, root));

  // The exported EMPTY_ROOT is a copy: scribbling on it changes nothing the module computes.
  const saved = Uint8Array.from(EMPTY_ROOT);
  EMPTY_ROOT.fill(0);
  try {
    t.ok(verifyConsistency(0, n, [], saved, root));
    t.notOk(verifyConsistency(0, n, [], EMPTY_ROOT, root));
    t.equal(hex(rootFromLeafHashes([])), hex(saved));
    t.equal(hex(treeRoot(0, () => EMPTY_ROOT)), hex(saved));
    t.equal(hex(CompactRange.empty().root()), hex(saved));
  } finally {
    EMPTY_ROOT.set(saved);
  }

  t.ok(hashEqual(new Uint8Array(2), new Uint8Array(2)));
  t.notOk(hashEqual(new Uint8Array(2), new Uint8Array(3)));
  t.notOk(hashEqual(Uint8Array.of(1), Uint8Array.of(2)));
  t.notOk(hashEqual('ab', 'ab'));
});

t.test('the root, not the proof, binds the tree size (RFC 9162 algorithm property)', async (t) => {
  // A proof that leaf 0 is in the 3-leaf tree also passes the RFC algorithm
  // for tree size 4 with the 3-leaf root: both paths turn the same way. No
  // 4-leaf tree has that root (its right child would have to be a leaf hash,
  // which 0x00/0x01 domain separation rules out), so callers must take size
  // and root from the same signed checkpoint, never mix them.
  const proof = inclusionProof(0, 3, strictReader(BIG, 3));
  t.ok(verifyInclusion(BIG.leaves[0]!, 0, 4, proof, REF_ROOTS[3]!));
  t.notOk(verifyInclusion(BIG.leaves[0]!, 0, 4, proof, REF_ROOTS[4]!));
});

t.test('compact range: append, onNode, root, and copies it does not share', async (t) => {
  const range = CompactRange.empty();
  t.equal(range.size, 0);
  t.equal(hex(range.root()), hex(EMPTY_ROOT));
  const seen: string[] = [];
  for (let i = 0; i < 8; i++)
    range.append(BIG.leaves[i]!, (level, index, hash) => {
      seen.push(`${level}/${index}`);
      t.equal(hex(hash), hex(BIG.levels[level]![index]!));
    });
  // Bottom up within each append; every perfect subtree of the 8-leaf tree exactly once.
  t.same(seen, [
    '0/0',
    '0/1',
    '1/0',
    '0/2',
    '0/3',
    '1/1',
    '2/0',
    '0/4',
    '0/5',
    '1/2',
    '0/6',
    '0/7',
    '1/3',
    '2/1',
    '3/0',
  ]);
  t.equal(range.size, 8);
  t.same(range.toJSON(), { size: 8, hashes: [hex(BIG.levels[3]![0]!)] });

  // Hashes handed in or out are copies: mutating them cannot corrupt the range.
  const leaf = Uint8Array.from(BIG.leaves[8]!);
  range.append(leaf, (_l, _i, h) => h.fill(0));
  leaf.fill(0);
  range.root().fill(0);
  t.equal(hex(range.root()), hex(REF_ROOTS[9]!));

  // A failing onNode (say, a tile write) leaves the range unchanged.
  const before = JSON.stringify(range.toJSON());
  t.throws(
    () =>
      range.append(BIG.leaves[9]!, () => {
        throw new Error('tile store down');
      }),
    /tile store down/,
  );
  t.equal(JSON.stringify(range.toJSON()), before);
  range.append(BIG.leaves[9]!);
  t.equal(hex(range.root()), hex(REF_ROOTS[10]!));

  for (const bad of [new Uint8Array(31), new Uint8Array(33), 'x'.repeat(32), undefined]) {
    throwsWith(t, () => range.append(bad as Uint8Array), MerkleError, 'merkle-bad-argument');
  }
  t.equal(range.size, 10);
});

t.test('compact range: toJSON/fromJSON round-trip at every size, then keep appending', async (t) => {
  const range = CompactRange.empty();
  let failures = 0;
  for (let n = 0; n < 300; n++) {
    const json = JSON.parse(JSON.stringify(range)) as unknown;
    const resumed = CompactRange.fromJSON(json);
    if (resumed.size !== n || hex(resumed.root()) !== hex(REF_ROOTS[n]!)) failures++;
    resumed.append(BIG.leaves[n]!);
    if (hex(resumed.root()) !== hex(REF_ROOTS[n + 1]!)) failures++;
    range.append(BIG.leaves[n]!);
  }
  t.equal(failures, 0);
});

t.test('compact range: large sizes keep exact node coordinates; the tree stops at 2^53 - 1', async (t) => {
  const h = hex(BIG.leaves[0]!);
  // size 2^52 - 1 = 52 one bits: the next append completes 52 merges up to the node (52, 0).
  const range = CompactRange.fromJSON({ size: 2 ** 52 - 1, hashes: Array.from({ length: 52 }, () => h) });
  const reported: string[] = [];
  range.append(BIG.leaves[1]!, (level, index) => reported.push(`${level}/${index}`));
  t.equal(reported.length, 53);
  t.equal(reported[0], `0/${2 ** 52 - 1}`);
  t.equal(reported[1], `1/${2 ** 51 - 1}`);
  t.equal(reported[52], '52/0');
  t.same(range.toJSON().hashes.length, 1);
  t.equal(range.size, 2 ** 52);

  const full = CompactRange.fromJSON({ size: Number.MAX_SAFE_INTEGER, hashes: Array.from({ length: 53 }, () => h) });
  throwsWith(t, () => full.append(BIG.leaves[0]!), MerkleError, 'merkle-bad-argument');
  t.equal(full.size, Number.MAX_SAFE_INTEGER);
});

t.test('compact range: fromJSON rejects malformed state', async (t) => {
  const h = hex(BIG.leaves[0]!);
  const bad: [string, unknown][] = [
    ['null', null],
    ['a string', JSON.stringify({ size: 1, hashes: [h] })],
    ['a number', 1],
    ['an array', [1, [h]]],
    ['missing hashes', { size: 0 }],
    ['missing size', { hashes: [] }],
    ['an extra key', { size: 1, hashes: [h], root: h }],
    ['negative size', { size: -1, hashes: [] }],
    ['fractional size', { size: 1.5, hashes: [h] }],
    ['size as a string', { size: '1', hashes: [h] }],
    ['size beyond 2^53 - 1', { size: 2 ** 53, hashes: [h] }],
    ['NaN size', { size: Number.NaN, hashes: [] }],
    ['hashes not an array', { size: 1, hashes: h }],
    ['too few hashes', { size: 3, hashes: [h] }],
    ['too many hashes', { size: 4, hashes: [h, h] }],
    ['hashes for the empty tree', { size: 0, hashes: [h] }],
    ['uppercase hex', { size: 1, hashes: [h.toUpperCase()] }],
    ['short hex', { size: 1, hashes: [h.slice(2)] }],
    ['long hex', { size: 1, hashes: [`${h}00`] }],
    ['non-hex digit', { size: 1, hashes: [`${h.slice(1)}g`] }],
    ['a space in the hex', { size: 1, hashes: [` ${h.slice(1)}`] }],
    ['a hash as bytes', { size: 1, hashes: [Array.from(BIG.leaves[0]!)] }],
    ['a null hash', { size: 1, hashes: [null] }],
  ];
  for (const [name, j] of bad) {
    throwsWith(t, () => CompactRange.fromJSON(j), MerkleError, 'merkle-bad-state', { what: name });
  }
  t.equal(CompactRange.fromJSON({ size: 0, hashes: [] }).size, 0);
});
