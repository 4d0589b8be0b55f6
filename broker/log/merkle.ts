/**
 * Merkle tree hashing, proofs and proof verification for the signed log,
 * following RFC 9162 (Certificate Transparency 2.0) section 2.1.
 *
 * Pure functions over bytes: no storage, no I/O. Proof builders do not see the
 * tree; they ask a NodeReader for the hashes of perfect (complete) subtrees,
 * addressed as (level, index): level 0 holds the leaf hashes, and node
 * (level, index) covers leaves [index * 2^level, (index + 1) * 2^level). A store
 * of tiles can answer every such read directly, so a proof costs O(log n)
 * reads. Hashes of the non-perfect right edge of a tree are never read; they
 * are computed here from perfect subtrees.
 *
 * Builders check their preconditions first and throw MerkleError. Verifiers
 * take attacker-controlled input and never throw: anything out of range or
 * mis-sized is simply "does not verify".
 *
 * Tree sizes and indices are JS safe integers (at most 2^53 - 1), so no
 * bitwise operators are used on them (those truncate to 32 bits); shifts are
 * divisions by powers of two, which are exact in this range.
 */

import { createHash } from 'node:crypto';

import { CodedError, type CodeOf } from '../core/errors.js';

/** Size in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

export type MerkleErrorCode = CodeOf<'merkle'>;

export class MerkleError extends CodedError<MerkleErrorCode> {}

/** Reads the hash of the perfect subtree at (level, index); level 0 = leaf hashes. */
export type NodeReader = (level: number, index: number) => Uint8Array;
export type AsyncNodeReader = (level: number, index: number) => Promise<Uint8Array>;

/** Coordinates of a perfect subtree: it covers leaves [index * 2^level, (index + 1) * 2^level). */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/**
 * What a proof is made of: one entry per proof hash, in proof order. Each entry
 * lists perfect subtrees, largest (leftmost) first; the proof hash is their
 * right fold (see foldRight). A perfect sibling is an entry of one node.
 */
export type ProofNodes = readonly (readonly NodeId[])[];

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** RFC 9162 2.1.1: the leaf hash, SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, entry);
}

/** RFC 9162 2.1.1: an interior node, SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(NODE_PREFIX, left, right);
}

/**
 * RFC 9162 2.1.1: the root of the empty tree, MTH({}) = SHA-256("").
 * A typed array cannot be frozen; the module keeps its own copy, so changing
 * this one cannot change what the module computes or accepts.
 */
export const EMPTY_ROOT: Uint8Array = sha256();
const EMPTY: Uint8Array = sha256();

/** Byte-wise equality; false for anything that is not a Uint8Array. */
export function hashEqual(a: unknown, b: unknown): boolean {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.length === HASH_SIZE;

/** 2^k for 0 <= k <= 53, exact. */
const pow2 = (k: number): number => 2 ** k;

/** The largest power of two strictly smaller than n (n >= 2), RFC 9162 2.1.1's k. */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Decomposes the leaf range [begin, end) into perfect subtrees, largest first,
 * greedily taking at each step the largest aligned subtree that fits. Every
 * range this module asks for is a subtree of the RFC 9162 recursion, whose
 * start is a multiple of a power of two >= its length; for those the sizes
 * follow the binary digits of (end - begin) and the right fold of the parts is
 * MTH(D[begin:end]).
 */
function rangeNodes(begin: number, end: number): NodeId[] {
  const out: NodeId[] = [];
  let at = begin;
  while (at < end) {
    let level = 0;
    while (pow2(level + 1) <= end - at && at % pow2(level + 1) === 0) level++;
    out.push({ level, index: at / pow2(level) });
    at += pow2(level);
  }
  return out;
}

/**
 * Right fold of subtree hashes: [a, b, c] -> H(a, H(b, c)). For the perfect
 * subtrees of an aligned range, largest first, this is the range's MTH.
 * Precondition: hashes is not empty.
 */
export function foldRight(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) throw new MerkleError('merkle-bad-argument', 'foldRight needs at least one hash');
  let r = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) r = nodeHash(hashes[i]!, r);
  return r;
}

/**
 * RFC 9162 2.1.1, MTH(D[n]), computed naively from all leaf hashes by the
 * recursive definition (split at the largest power of two smaller than n).
 * The reference the fast code is tested against; O(n) hashes.
 */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Uint8Array {
  const mth = (lo: number, hi: number): Uint8Array => {
    if (hi - lo === 1) return leaves[lo]!;
    const k = largestPowerOfTwoBelow(hi - lo);
    return nodeHash(mth(lo, lo + k), mth(lo + k, hi));
  };
  return leaves.length === 0 ? Uint8Array.from(EMPTY) : mth(0, leaves.length);
}

function checkSize(name: string, n: unknown): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new MerkleError('merkle-bad-argument', `${name} must be a non-negative safe integer`);
  }
}

/**
 * The nodes that make up the root of a tree of `treeSize` leaves: its perfect
 * subtrees, largest first (empty for the empty tree).
 * Precondition: treeSize is a non-negative safe integer.
 */
export function treeRootNodes(treeSize: number): NodeId[] {
  checkSize('treeSize', treeSize);
  return rangeNodes(0, treeSize);
}

/**
 * The nodes of the inclusion proof for leaf `index` in the tree of `treeSize`
 * leaves, RFC 9162 2.1.3.1 PATH(m, D[n]), in proof order (bottom up).
 * Preconditions: index and treeSize are safe integers, 0 <= index < treeSize.
 */
export function inclusionProofNodes(index: number, treeSize: number): ProofNodes {
  checkSize('index', index);
  checkSize('treeSize', treeSize);
  if (index >= treeSize) throw new MerkleError('merkle-bad-argument', 'index must be smaller than treeSize');
  // Walk the RFC recursion from the root down; each step contributes the
  // subtree on the side of the split that does not hold the leaf. PATH appends
  // the top-level sibling last, so the walk is reversed at the end.
  const topDown: NodeId[][] = [];
  let lo = 0;
  let hi = treeSize;
  while (hi - lo > 1) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (index < lo + k) {
      topDown.push(rangeNodes(lo + k, hi)); // PATH(m, D[0:k]) : MTH(D[k:n])
      hi = lo + k;
    } else {
      topDown.push(rangeNodes(lo, lo + k)); // PATH(m - k, D[k:n]) : MTH(D[0:k])
      lo += k;
    }
  }
  return topDown.reverse();
}

/**
 * The nodes of the consistency proof between the trees of `first` and
 * `second` leaves, RFC 9162 2.1.4.1 PROOF(m, D[n]), in proof order. The proof
 * is empty when first = 0 or first = second (the RFC defines proofs for
 * 0 < m < n; those two cases need none).
 * Preconditions: first and second are safe integers, 0 <= first <= second.
 */
export function consistencyProofNodes(first: number, second: number): ProofNodes {
  checkSize('first', first);
  checkSize('second', second);
  if (first > second) throw new MerkleError('merkle-bad-argument', 'first must not be larger than second');
  if (first === 0) return [];
  // SUBPROOF(m, D[lo:hi], b), walked from the root down and reversed at the end.
  const topDown: NodeId[][] = [];
  let lo = 0;
  let hi = second;
  let completeSubtree = true; // b: the current subtree is one the verifier already has the root of
  while (first < hi) {
    const k = largestPowerOfTwoBelow(hi - lo);
    if (first - lo <= k) {
      topDown.push(rangeNodes(lo + k, hi)); // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
      hi = lo + k;
    } else {
      topDown.push(rangeNodes(lo, lo + k)); // SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
      lo += k;
      completeSubtree = false;
    }
  }
  // first === hi: SUBPROOF(m, D[m], true) = {}, SUBPROOF(m, D[m], false) = {MTH(D[m])}.
  if (!completeSubtree) topDown.push(rangeNodes(lo, hi));
  return topDown.reverse();
}

function checkNode(h: unknown, n: NodeId): Uint8Array {
  if (!isHash(h)) {
    throw new MerkleError(
      'merkle-bad-state',
      `node reader returned no ${HASH_SIZE}-byte hash for level ${n.level} index ${n.index}`,
    );
  }
  return h;
}

function readSync(plan: ProofNodes, getNode: NodeReader): Uint8Array[] {
  return plan.map((parts) => foldRight(parts.map((n) => checkNode(getNode(n.level, n.index), n))));
}

async function readAsync(plan: ProofNodes, getNode: AsyncNodeReader): Promise<Uint8Array[]> {
  return Promise.all(
    plan.map(async (parts) =>
      foldRight(await Promise.all(parts.map(async (n) => checkNode(await getNode(n.level, n.index), n)))),
    ),
  );
}

/**
 * Root hash of the tree of `treeSize` leaves, from its perfect subtrees
 * (at most log2(n) + 1 reads). EMPTY_ROOT for size 0.
 * Precondition: treeSize is a non-negative safe integer.
 */
export function treeRoot(treeSize: number, getNode: NodeReader): Uint8Array {
  const nodes = treeRootNodes(treeSize);
  return nodes.length === 0 ? Uint8Array.from(EMPTY) : readSync([nodes], getNode)[0]!;
}

export async function treeRootAsync(treeSize: number, getNode: AsyncNodeReader): Promise<Uint8Array> {
  const nodes = treeRootNodes(treeSize);
  return nodes.length === 0 ? Uint8Array.from(EMPTY) : (await readAsync([nodes], getNode))[0]!;
}

/**
 * Inclusion proof for leaf `index` in the tree of size `treeSize`,
 * RFC 9162 2.1.3.1. getNode(level, index) returns the hash of the perfect
 * subtree at that level and index (level 0 = leaf hashes) – this lets a store
 * of tiles answer in O(log n) reads.
 * Preconditions: index and treeSize are safe integers, 0 <= index < treeSize.
 */
export function inclusionProof(index: number, treeSize: number, getNode: NodeReader): Uint8Array[] {
  return readSync(inclusionProofNodes(index, treeSize), getNode);
}

export async function inclusionProofAsync(
  index: number,
  treeSize: number,
  getNode: AsyncNodeReader,
): Promise<Uint8Array[]> {
  return readAsync(inclusionProofNodes(index, treeSize), getNode);
}

/**
 * Consistency proof between the trees of sizes `first` and `second`,
 * RFC 9162 2.1.4.1; empty when first = 0 or first = second.
 * Preconditions: first and second are safe integers, 0 <= first <= second.
 */
export function consistencyProof(first: number, second: number, getNode: NodeReader): Uint8Array[] {
  return readSync(consistencyProofNodes(first, second), getNode);
}

export async function consistencyProofAsync(
  first: number,
  second: number,
  getNode: AsyncNodeReader,
): Promise<Uint8Array[]> {
  return readAsync(consistencyProofNodes(first, second), getNode);
}

const isIndex = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isProof = (p: unknown): p is readonly Uint8Array[] => Array.isArray(p) && p.every(isHash);
const isOdd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

/**
 * RFC 9162 2.1.3.2: does `proof` show that `leafHash` is leaf `index` of the
 * tree of `treeSize` leaves whose root is `root`? All arguments may be
 * attacker-controlled; anything malformed returns false.
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!isHash(leafHash) || !isHash(root) || !isIndex(index) || !isIndex(treeSize) || !isProof(proof)) return false;
  // 1. leaf_index >= tree_size fails.
  if (index >= treeSize) return false;
  // 2.-3.
  let fn = index;
  let sn = treeSize - 1;
  let r = leafHash;
  // 4.
  for (const p of proof) {
    if (sn === 0) return false; // a. the proof is longer than the path
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      // If LSB(fn) is not set, skip the levels where the node is the right
      // edge of the tree and has no sibling.
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  return sn === 0 && hashEqual(r, root);
}

/**
 * RFC 9162 2.1.4.2: does `proof` show that the tree of `first` leaves with
 * root `firstRoot` is a prefix of the tree of `second` leaves with root
 * `secondRoot`? The RFC algorithm covers 0 < first < second; for
 * first = second the proof must be empty and the roots equal, and for
 * first = 0 the proof must be empty and firstRoot the empty root. All
 * arguments may be attacker-controlled; anything malformed returns false.
 */
export function verifyConsistency(
  first: number,
  second: number,
  proof: readonly Uint8Array[],
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
): boolean {
  if (!isIndex(first) || !isIndex(second) || !isProof(proof) || !isHash(firstRoot) || !isHash(secondRoot)) return false;
  if (first > second) return false;
  if (first === second) return proof.length === 0 && hashEqual(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0 && hashEqual(firstRoot, EMPTY);
  // 1. An empty path fails.
  if (proof.length === 0) return false;
  // 2. When first is a power of two the old root is itself a node of the new
  //    tree, and the proof starts above it.
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  // 3.
  let fn = first - 1;
  let sn = second - 1;
  // 4.
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr = path[0]!;
  let sr = path[0]!;
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  return sn === 0 && hashEqual(fr, firstRoot) && hashEqual(sr, secondRoot);
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
