/**
 * An append-only compact range over the leaves [0, size): the hashes of the
 * perfect subtrees that the binary digits of `size` cut the tree into, largest
 * (leftmost) first – popcount(size) hashes, O(log n) state. Enough to append
 * further leaves and to compute the RFC 9162 2.1.1 root of the tree at any
 * size reached. The checkpointer folds log entries through one of these and
 * stores its state (toJSON) to resume after a restart.
 *
 * Pure: no I/O. Each append reports, through `onNode`, every perfect subtree
 * it completes, so the caller can keep tiles of all leaf and interior hashes.
 */

import { Buffer } from 'node:buffer';

import { HASH_SIZE, MerkleError, foldRight, nodeHash, rootFromLeafHashes } from './merkle.js';

export interface CompactRangeJSON {
  size: number;
  /** Lowercase hex of the perfect-subtree hashes, largest (leftmost) first. */
  hashes: string[];
}

/** Receives a completed perfect subtree: node (level, index) covers leaves [index * 2^level, (index + 1) * 2^level). */
export type NodeSink = (level: number, index: number, hash: Uint8Array) => void;

const isOdd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

/** Number of set bits of a non-negative safe integer (no bitwise operators: they truncate to 32 bits). */
function popcount(n: number): number {
  let c = 0;
  for (let v = n; v > 0; v = half(v)) if (isOdd(v)) c++;
  return c;
}

const HEX_HASH_LENGTH = HASH_SIZE * 2;

function isLowerHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

const badState = (why: string): MerkleError => new MerkleError('merkle-bad-state', `compact range state: ${why}`);

export class CompactRange {
  #size: number;
  /** Perfect-subtree hashes, largest first; owned copies, never handed out. */
  #hashes: Uint8Array[];

  private constructor(size: number, hashes: Uint8Array[]) {
    this.#size = size;
    this.#hashes = hashes;
  }

  /** The range of the empty tree. */
  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** Number of leaves appended so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends the leaf hash of entry number `size` (a leafHash(), not the entry).
   * `onNode` is called for every perfect subtree completed, bottom up: the leaf
   * itself at level 0, then each interior node it completes. If onNode throws,
   * the range is left unchanged, so a failed tile write can be retried.
   * Preconditions: leafHash is HASH_SIZE bytes; size < Number.MAX_SAFE_INTEGER.
   */
  append(leafHash: Uint8Array, onNode?: NodeSink): void {
    if (!(leafHash instanceof Uint8Array) || leafHash.length !== HASH_SIZE) {
      throw new MerkleError('merkle-bad-argument', `a leaf hash must be ${HASH_SIZE} bytes`);
    }
    if (this.#size >= Number.MAX_SAFE_INTEGER) {
      throw new MerkleError('merkle-bad-argument', 'the tree cannot grow beyond Number.MAX_SAFE_INTEGER leaves');
    }
    const hashes = this.#hashes.slice();
    let hash: Uint8Array = Uint8Array.from(leafHash);
    let level = 0;
    let index = this.#size;
    const completed: [number, number, Uint8Array][] = [[level, index, hash]];
    // Every trailing 1 bit of the old size is a perfect subtree of the same
    // height as the one just completed, standing to its left: merge them.
    for (let s = this.#size; isOdd(s); s = half(s)) {
      hash = nodeHash(hashes.pop()!, hash);
      level++;
      index = half(index);
      completed.push([level, index, hash]);
    }
    hashes.push(hash);
    if (onNode !== undefined) for (const [l, i, h] of completed) onNode(l, i, Uint8Array.from(h));
    this.#hashes = hashes;
    this.#size++;
  }

  /** RFC 9162 2.1.1 MTH of the leaves appended so far (EMPTY_ROOT when none). */
  root(): Uint8Array {
    return this.#size === 0 ? rootFromLeafHashes([]) : Uint8Array.from(foldRight(this.#hashes));
  }

  toJSON(): CompactRangeJSON {
    return { size: this.#size, hashes: this.#hashes.map((h) => Buffer.from(h).toString('hex')) };
  }

  /**
   * Restores a range saved with toJSON. The input is untrusted stored data and
   * is checked defensively: exactly the keys `size` (a non-negative safe
   * integer) and `hashes` (popcount(size) lowercase hex strings of HASH_SIZE
   * bytes). Throws MerkleError 'merkle-bad-state' otherwise.
   */
  static fromJSON(j: unknown): CompactRange {
    if (typeof j !== 'object' || j === null || Array.isArray(j)) throw badState('not an object');
    const keys = Object.keys(j);
    if (keys.length !== 2 || !keys.includes('size') || !keys.includes('hashes')) {
      throw badState('keys must be exactly size and hashes');
    }
    const { size, hashes } = j as Record<string, unknown>;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw badState('size must be a non-negative safe integer');
    }
    if (!Array.isArray(hashes)) throw badState('hashes must be an array');
    const copied: unknown[] = hashes.slice();
    if (copied.length !== popcount(size)) throw badState('hash count must equal the number of set bits of size');
    const parsed = copied.map((h) => {
      if (typeof h !== 'string' || h.length !== HEX_HASH_LENGTH || !isLowerHex(h)) {
        throw badState(`each hash must be ${HEX_HASH_LENGTH} lowercase hex digits`);
      }
      return new Uint8Array(Buffer.from(h, 'hex'));
    });
    return new CompactRange(size, parsed);
  }
}
