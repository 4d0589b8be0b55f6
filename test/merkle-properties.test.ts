// Property-based tests (fast-check) of the Merkle module and the compact range.
//
// Trees of any size up to 2^53 - 1 are modelled sparsely: every leaf holds the
// same default hash except a few "special" leaves with distinct hashes, so any
// node or RFC 9162 subtree hash can be computed in O(specials * log n). Small
// trees make every leaf special, i.e. they are ordinary trees. Proofs made by
// the module must equal the literal RFC recursion, must verify, and every named
// mutation of a proof case (transparency-dev style: `wrong-leaf`,
// `modified-proof[0]-bit-@3`, ...) must fail.

import t from 'tap';
import fc from 'fast-check';

import {
  EMPTY_ROOT,
  HASH_SIZE,
  consistencyProof,
  consistencyProofAsync,
  inclusionProof,
  inclusionProofAsync,
  leafHash,
  nodeHash,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  type NodeReader,
} from '../broker/log/merkle.js';
import { CompactRange, type CompactRangeJSON } from '../broker/log/compact-range.js';

const MAX = Number.MAX_SAFE_INTEGER;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Largest power of two strictly below n (n >= 2): RFC 9162's k. */
const kOf = (n: number): number => {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
};

class SparseTree {
  static readonly DEFAULT_LEAF = leafHash(enc('default leaf'));
  readonly #special: Map<number, Uint8Array>;
  readonly #sorted: number[];
  readonly #nodes = new Map<string, Uint8Array>();
  readonly #mth = new Map<string, Uint8Array>();
  static readonly #defaultMth = new Map<number, Uint8Array>();

  constructor(specialIndices: Iterable<number>) {
    this.#special = new Map([...new Set(specialIndices)].map((i) => [i, leafHash(enc(`special leaf ${i}`))]));
    this.#sorted = [...this.#special.keys()].sort((a, b) => a - b);
  }

  leaf(i: number): Uint8Array {
    return this.#special.get(i) ?? SparseTree.DEFAULT_LEAF;
  }

  /** Is any special leaf in [lo, hi)? */
  #hasSpecial(lo: number, hi: number): boolean {
    let a = 0;
    let b = this.#sorted.length;
    while (a < b) {
      const mid = Math.floor((a + b) / 2);
      if (this.#sorted[mid]! < lo) a = mid + 1;
      else b = mid;
    }
    return a < this.#sorted.length && this.#sorted[a]! < hi;
  }

  /** MTH of `size` default leaves, by the RFC recursion. */
  static defaultMth(size: number): Uint8Array {
    if (size === 1) return SparseTree.DEFAULT_LEAF;
    let h = SparseTree.#defaultMth.get(size);
    if (h === undefined) {
      const k = kOf(size);
      h = nodeHash(SparseTree.defaultMth(k), SparseTree.defaultMth(size - k));
      SparseTree.#defaultMth.set(size, h);
    }
    return h;
  }

  /** RFC 9162 2.1.1 MTH(D[lo:hi]), literally, using the sparseness only to memoize. */
  mth(lo: number, hi: number): Uint8Array {
    if (hi === lo) return EMPTY_ROOT;
    if (hi - lo === 1) return this.leaf(lo);
    if (!this.#hasSpecial(lo, hi)) return SparseTree.defaultMth(hi - lo);
    const key = `${lo},${hi}`;
    let h = this.#mth.get(key);
    if (h === undefined) {
      const k = kOf(hi - lo);
      h = nodeHash(this.mth(lo, lo + k), this.mth(lo + k, hi));
      this.#mth.set(key, h);
    }
    return h;
  }

  /** Perfect subtree (level, index), computed from its children. */
  node(level: number, index: number): Uint8Array {
    const lo = index * 2 ** level;
    if (level === 0) return this.leaf(lo);
    if (!this.#hasSpecial(lo, lo + 2 ** level)) return SparseTree.defaultMth(2 ** level);
    const key = `${level}/${index}`;
    let h = this.#nodes.get(key);
    if (h === undefined) {
      h = nodeHash(this.node(level - 1, 2 * index), this.node(level - 1, 2 * index + 1));
      this.#nodes.set(key, h);
    }
    return h;
  }

  /** A reader that refuses anything but a perfect subtree within the first `size` leaves. */
  reader(size: number): NodeReader {
    return (level, index) => {
      if (!Number.isSafeInteger(level) || !Number.isSafeInteger(index) || level < 0 || level > 53 || index < 0) {
        throw new Error(`bad coordinates ${level},${index}`);
      }
      if ((index + 1) * 2 ** level > size) throw new Error(`node ${level},${index} is not inside size ${size}`);
      return this.node(level, index);
    };
  }

  /** PATH(m, D[lo:hi]), RFC 9162 2.1.3.1, literally (m relative to lo). */
  path(m: number, lo: number, hi: number): Uint8Array[] {
    if (hi - lo === 1) return [];
    const k = kOf(hi - lo);
    return m < k
      ? [...this.path(m, lo, lo + k), this.mth(lo + k, hi)]
      : [...this.path(m - k, lo + k, hi), this.mth(lo, lo + k)];
  }

  /** SUBPROOF(m, D[lo:hi], b), RFC 9162 2.1.4.1, literally (m relative to lo). */
  subproof(m: number, lo: number, hi: number, b: boolean): Uint8Array[] {
    if (m === hi - lo) return b ? [] : [this.mth(lo, hi)];
    const k = kOf(hi - lo);
    return m <= k
      ? [...this.subproof(m, lo, lo + k, b), this.mth(lo + k, hi)]
      : [...this.subproof(m - k, lo + k, hi, false), this.mth(lo, lo + k)];
  }
}

// --- Arbitraries ---

/** Tree sizes: small ones often (every leaf distinct), and sizes up to 2^53 - 1. */
const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 70 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 5000 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 2 ** 32 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: MAX }) },
  { weight: 1, arbitrary: fc.constantFrom(1, 2, 3, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52, MAX - 1, MAX) },
);

/** An index below n, biased to the edges. */
const indexBelow = (n: number): fc.Arbitrary<number> =>
  fc.oneof(fc.integer({ min: 0, max: n - 1 }), fc.constantFrom(0, n - 1, Math.floor(n / 2), Math.max(0, n - 2)));

const treeFor = (size: number, interesting: number[], extra: number[]): SparseTree =>
  new SparseTree(size <= 70 ? Array.from({ length: size }, (_, i) => i) : [...interesting, ...extra]);

const inclusionArb = sizeArb.chain((size) =>
  fc.record({
    size: fc.constant(size),
    index: indexBelow(size),
    extra: fc.array(fc.integer({ min: 0, max: size - 1 }), { maxLength: 5 }),
    bit: fc.integer({ min: 0, max: HASH_SIZE * 8 - 1 }),
  }),
);

const consistencyArb = sizeArb.chain((second) =>
  fc.record({
    second: fc.constant(second),
    first: fc.oneof(
      { weight: 5, arbitrary: indexBelow(second).map((f) => f + 1) },
      { weight: 1, arbitrary: fc.constantFrom(0, second) },
    ),
    extra: fc.array(fc.integer({ min: 0, max: second - 1 }), { maxLength: 5 }),
    bit: fc.integer({ min: 0, max: HASH_SIZE * 8 - 1 }),
  }),
);

// --- Named mutations ---

const flip = (h: Uint8Array, bit: number): Uint8Array => {
  const c = Uint8Array.from(h);
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
};

interface InclusionCase {
  leaf: Uint8Array;
  index: number;
  size: number;
  proof: Uint8Array[];
  root: Uint8Array;
}

interface ConsistencyCase {
  first: number;
  second: number;
  proof: Uint8Array[];
  firstRoot: Uint8Array;
  secondRoot: Uint8Array;
}

/** Mutations of a proof's hashes, shared by both kinds of proof. */
function proofMutations(proof: Uint8Array[], bit: number, extraHash: Uint8Array): [string, Uint8Array[]][] {
  const out: [string, Uint8Array[]][] = [];
  proof.forEach((_, i) => {
    for (const b of new Set([0, 7, 255, bit])) {
      out.push([`modified-proof[${i}]-bit-@${b}`, proof.map((p, j) => (j === i ? flip(p, b) : p))]);
    }
  });
  if (proof.length > 0) {
    out.push(['truncated-proof', proof.slice(0, -1)]);
    out.push(['truncated-proof-front', proof.slice(1)]);
    out.push(['empty-proof', []]);
  }
  out.push(['extended-proof', [...proof, extraHash]]);
  out.push(['extended-proof-zeros', [...proof, new Uint8Array(HASH_SIZE)]]);
  out.push(['prepended-proof', [extraHash, ...proof]]);
  for (let i = 0; i + 1 < proof.length; i++) {
    for (const j of new Set([i + 1, proof.length - 1])) {
      if (hex(proof[i]!) === hex(proof[j]!)) continue;
      const swapped = proof.slice();
      [swapped[i], swapped[j]] = [proof[j]!, proof[i]!];
      out.push([`swapped-proof-elements[${i},${j}]`, swapped]);
    }
  }
  return out;
}

/**
 * Named mutations of a valid inclusion case; each must fail. The size is only
 * changed to 2n or n/2: n +/- 1 can pass the RFC algorithm with the unchanged
 * root (see merkle.test.ts, "the root, not the proof, binds the tree size").
 */
function inclusionMutations(c: InclusionCase, bit: number): [string, InclusionCase][] {
  const out: [string, InclusionCase][] = [];
  out.push([`wrong-leaf-bit-@${bit}`, { ...c, leaf: flip(c.leaf, bit) }]);
  // In a 1-leaf tree the root is the leaf hash, so these two are no mutation there.
  if (c.size > 1) out.push(['wrong-leaf-is-root', { ...c, leaf: c.root }]);
  for (const i of new Set([
    c.index - 1,
    c.index + 1,
    c.index + 2,
    0,
    c.size - 1,
    Math.floor(c.index / 2),
    c.index * 2,
  ])) {
    if (i !== c.index) out.push([`wrong-index-${i}`, { ...c, index: i }]);
  }
  out.push(['wrong-size-x2', { ...c, size: c.size * 2 }]);
  out.push(['wrong-size-half', { ...c, size: Math.floor(c.size / 2) }]);
  out.push([`wrong-root-bit-@${bit}`, { ...c, root: flip(c.root, bit) }]);
  if (c.size > 1) out.push(['wrong-root-is-leaf', { ...c, root: c.leaf }]);
  for (const [name, proof] of proofMutations(c.proof, bit, c.root)) out.push([name, { ...c, proof }]);
  return out;
}

/**
 * Named mutations of a valid consistency case; each must fail. The second
 * size is only changed to 2n or n/2, as for inclusion. Every tree extends
 * the empty one, so from size 0 the second size and root are not mutated.
 */
function consistencyMutations(c: ConsistencyCase, bit: number): [string, ConsistencyCase][] {
  const out: [string, ConsistencyCase][] = [];
  out.push([`wrong-first-root-bit-@${bit}`, { ...c, firstRoot: flip(c.firstRoot, bit) }]);
  if (c.first > 0) out.push([`wrong-second-root-bit-@${bit}`, { ...c, secondRoot: flip(c.secondRoot, bit) }]);
  if (c.first > 0 && c.first < c.second)
    out.push(['swapped-roots', { ...c, firstRoot: c.secondRoot, secondRoot: c.firstRoot }]);
  for (const f of new Set([c.first - 1, c.first + 1, c.first * 2, Math.floor(c.first / 2)])) {
    if (f !== c.first) out.push([`wrong-first-${f}`, { ...c, first: f }]);
  }
  if (c.first > 0) out.push(['wrong-second-x2', { ...c, second: c.second * 2 }]);
  if (c.first > 0) out.push(['wrong-second-half', { ...c, second: Math.floor(c.second / 2) }]);
  for (const [name, proof] of proofMutations(c.proof, bit, c.firstRoot)) out.push([name, { ...c, proof }]);
  return out;
}

const incl = (c: InclusionCase): boolean => verifyInclusion(c.leaf, c.index, c.size, c.proof, c.root);
const cons = (c: ConsistencyCase): boolean => verifyConsistency(c.first, c.second, c.proof, c.firstRoot, c.secondRoot);

// MERKLE_FC_RUNS=100000 for a deep run; the default keeps the suite fast.
const fcOptions = { numRuns: Number(process.env['MERKLE_FC_RUNS'] ?? 100) };

t.test('inclusion: proofs equal PATH(m, D[n]), verify, and every named mutation fails', async (t) => {
  let mutations = 0;
  fc.assert(
    fc.property(inclusionArb, ({ size, index, extra, bit }) => {
      const tree = treeFor(size, [index], extra);
      const proof = inclusionProof(index, size, tree.reader(size));
      const want = tree.path(index, 0, size);
      if (proof.map(hex).join() !== want.map(hex).join())
        throw new Error(`proof differs from PATH for ${index}/${size}`);
      const root = tree.mth(0, size);
      if (hex(treeRoot(size, tree.reader(size))) !== hex(root))
        throw new Error(`root differs from MTH for size ${size}`);
      const c: InclusionCase = { leaf: tree.leaf(index), index, size, proof, root };
      if (!incl(c)) throw new Error(`valid proof rejected: ${index}/${size}`);
      for (const [name, m] of inclusionMutations(c, bit)) {
        mutations++;
        if (incl(m)) throw new Error(`mutation ${name} verified: ${index}/${size}`);
      }
    }),
    fcOptions,
  );
  t.ok(mutations > 0, `${mutations} mutations rejected`);
});

t.test('consistency: proofs equal PROOF(m, D[n]), verify, and every named mutation fails', async (t) => {
  let mutations = 0;
  fc.assert(
    fc.property(consistencyArb, ({ first, second, extra, bit }) => {
      const tree = treeFor(second, [Math.max(0, first - 1), first, second - 1], extra);
      const proof = consistencyProof(first, second, tree.reader(second));
      const want = first === 0 ? [] : tree.subproof(first, 0, second, true);
      if (proof.map(hex).join() !== want.map(hex).join())
        throw new Error(`proof differs from PROOF for ${first}/${second}`);
      const c: ConsistencyCase = {
        first,
        second,
        proof,
        firstRoot: tree.mth(0, first),
        secondRoot: tree.mth(0, second),
      };
      if (!cons(c)) throw new Error(`valid proof rejected: ${first}/${second}`);
      for (const [name, m] of consistencyMutations(c, bit)) {
        mutations++;
        if (cons(m)) throw new Error(`mutation ${name} verified: ${first}/${second}`);
      }
    }),
    fcOptions,
  );
  t.ok(mutations > 0, `${mutations} mutations rejected`);
});

t.test('async builders return the same proofs as the sync ones', async (t) => {
  await fc.assert(
    fc.asyncProperty(consistencyArb, async ({ first, second, extra }) => {
      const tree = treeFor(second, [first], extra);
      const read = tree.reader(second);
      const slow = async (l: number, i: number): Promise<Uint8Array> => read(l, i);
      const index = Math.max(0, first - 1);
      const a = (await inclusionProofAsync(index, second, slow)).map(hex).join();
      const b = (await consistencyProofAsync(first, second, slow)).map(hex).join();
      return (
        a === inclusionProof(index, second, read).map(hex).join() &&
        b === consistencyProof(first, second, read).map(hex).join()
      );
    }),
    { numRuns: 60 },
  );
  t.pass('async = sync');
});

t.test('verifiers are total: arbitrary input gives false, never an exception', async (t) => {
  const hashArb = fc.uint8Array({ minLength: HASH_SIZE, maxLength: HASH_SIZE });
  const numArb = fc.oneof(
    fc.integer({ min: -3, max: 70 }),
    fc.integer({ min: 0, max: MAX }),
    fc.double(),
    fc.constantFrom(2 ** 53, -0, Number.NaN),
  );
  const anyArb = fc.oneof(fc.anything(), hashArb, fc.uint8Array({ maxLength: 40 }));
  const proofArb = fc.oneof(fc.array(hashArb, { maxLength: 70 }), fc.array(anyArb, { maxLength: 4 }), anyArb);
  fc.assert(
    fc.property(fc.oneof(hashArb, anyArb), numArb, numArb, proofArb, fc.oneof(hashArb, anyArb), (a, i, n, p, r) => {
      const x = verifyInclusion(a as Uint8Array, i, n, p as Uint8Array[], r as Uint8Array);
      const y = verifyConsistency(i, n, p as Uint8Array[], a as Uint8Array, r as Uint8Array);
      // Random bytes cannot form a valid proof; only the trivial consistency cases could hold.
      return x === false && (y === false || (Array.isArray(p) && p.length === 0));
    }),
    { numRuns: 2000 },
  );
  t.pass('total');
});

// --- Compact range ---

const DENSE = new SparseTree(Array.from({ length: 700 }, (_, i) => i));

t.test(
  'compact range: root equals MTH after any appends and resumes; onNode reports exactly the perfect subtrees',
  async (t) => {
    const stepArb = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 1, max: 40 }).map((n) => ({ append: n })) },
      { weight: 1, arbitrary: fc.constant({ append: 0 }) }, // resume from toJSON
    );
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 30 }), (steps) => {
        let range = CompactRange.empty();
        const reported = new Map<string, string>();
        for (const { append } of steps) {
          if (append === 0) {
            range = CompactRange.fromJSON(JSON.parse(JSON.stringify(range.toJSON())));
            continue;
          }
          for (let i = 0; i < append && range.size < 700; i++) {
            range.append(DENSE.leaf(range.size), (level, index, hash) => {
              const key = `${level}/${index}`;
              if (reported.has(key)) throw new Error(`node ${key} reported twice`);
              reported.set(key, hex(hash));
            });
          }
          if (hex(range.root()) !== hex(DENSE.mth(0, range.size)))
            throw new Error(`root differs at size ${range.size}`);
        }
        // Every perfect subtree inside [0, size), with its hash, and nothing else.
        let expected = 0;
        for (let level = 0; 2 ** level <= range.size; level++) {
          for (let index = 0; (index + 1) * 2 ** level <= range.size; index++) {
            expected++;
            if (reported.get(`${level}/${index}`) !== hex(DENSE.node(level, index)))
              throw new Error(`node ${level}/${index} missing or wrong`);
          }
        }
        return (
          reported.size === expected &&
          range.toJSON().hashes.length === range.toJSON().size.toString(2).replace(/0/g, '').length
        );
      }),
      { numRuns: 100 },
    );
    t.pass('compact range');
  },
);

t.test('compact range: fromJSON of random junk throws merkle-bad-state or round-trips exactly', async (t) => {
  const hexArb = fc.uint8Array({ minLength: HASH_SIZE, maxLength: HASH_SIZE }).map((b) => hex(b));
  const stateArb = fc.oneof(
    fc.anything(),
    fc.record({
      size: fc.oneof(fc.integer({ min: -2, max: 20 }), fc.double(), fc.string()),
      hashes: fc.array(fc.oneof(hexArb, fc.string(), fc.anything()), { maxLength: 6 }),
    }),
    fc.record({ size: fc.integer({ min: 0, max: 64 }), hashes: fc.array(hexArb, { maxLength: 7 }) }),
  );
  fc.assert(
    fc.property(stateArb, (j) => {
      let range: CompactRange;
      try {
        range = CompactRange.fromJSON(j);
      } catch (e) {
        return (e as { code?: string }).code === 'merkle-bad-state';
      }
      const { size, hashes } = j as CompactRangeJSON;
      return range.size === size && range.toJSON().hashes.join() === hashes.join();
    }),
    { numRuns: 1000 },
  );
  t.pass('fromJSON');
});
