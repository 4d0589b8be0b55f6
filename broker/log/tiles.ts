/**
 * The tree's hashes in NATS, tlog-tiles style: the KV bucket `log-tiles`
 * holds, per tree level, rows of TILE_WIDTH consecutive node hashes.
 *
 *   key  `<level>.<tile>`   value: the hashes of nodes (level, tile * 256 + k),
 *                           k = 0 .. w-1, 32 bytes each, w <= 256
 *
 * Why a row per level rather than a key per node or tlog-tiles' 8-level tiles:
 * a key per node costs two KV messages (and their subject overhead) per entry;
 * a tlog-tiles tile of height 8 stores only every 8th level and needs up to 128
 * leaf hashes re-hashed per read. A row per level stores each node once (about
 * 2 x 32 bytes per entry in all), is written once per checkpoint per level
 * (the checkpointer batches), and answers any perfect-subtree read with one
 * KV get – so a proof is O(log n) reads, and rows are cached: a node never
 * changes once written, so a cached row is good for every index it holds.
 *
 * Rows grow in place (KV history 1). Writes are compare-and-set on the row's
 * revision, so two writers (a stale leader and a new one) can never shorten a
 * row: the loser re-reads and merges.
 */

import { LiaisonError } from '../core/errors.js';
import type { KvBucket, StorePort } from '../core/store-port.js';
import { HASH_SIZE, MerkleError, type AsyncNodeReader } from './merkle.js';

export const TILES_BUCKET = 'log-tiles';
export const TILE_WIDTH = 256;

export const tileKey = (level: number, tile: number): string => `${level}.${tile}`;

interface CachedRow {
  bytes: Uint8Array;
}

export class TileStore {
  readonly #kv: KvBucket;
  readonly #cache = new Map<string, CachedRow>();
  readonly #maxCached: number;

  private constructor(kv: KvBucket, maxCached: number) {
    this.#kv = kv;
    this.#maxCached = maxCached;
  }

  static async open(bus: StorePort, replicas = 1, maxCachedRows = 4096): Promise<TileStore> {
    const kv = await bus.bucket(TILES_BUCKET, { history: 1, replicas });
    return new TileStore(kv, maxCachedRows);
  }

  #remember(key: string, bytes: Uint8Array): void {
    if (this.#cache.size >= this.#maxCached) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(key, { bytes });
  }

  async #getRow(level: number, tile: number): Promise<{ bytes: Uint8Array; revision: number } | null> {
    const e = await this.#kv.get(tileKey(level, tile));
    if (!e || e.operation !== 'PUT') return null;
    return { bytes: e.value, revision: e.revision };
  }

  /**
   * Store node hashes (level, index) → hash. Nodes of one row must extend it
   * without a gap (the tree is filled left to right). Idempotent: writing a
   * node that is already there with the same hash is a no-op; another hash is
   * an error (the log would have changed under us).
   */
  async write(nodes: readonly { level: number; index: number; hash: Uint8Array }[]): Promise<void> {
    const rows = new Map<string, { level: number; tile: number; items: { offset: number; hash: Uint8Array }[] }>();
    for (const n of nodes) {
      const tile = Math.floor(n.index / TILE_WIDTH);
      const key = tileKey(n.level, tile);
      let r = rows.get(key);
      if (!r) rows.set(key, (r = { level: n.level, tile, items: [] }));
      r.items.push({ offset: (n.index % TILE_WIDTH) * HASH_SIZE, hash: n.hash });
    }
    await Promise.all([...rows.entries()].map(([key, r]) => this.#writeRow(key, r.level, r.tile, r.items)));
  }

  async #writeRow(
    key: string,
    level: number,
    tile: number,
    items: { offset: number; hash: Uint8Array }[],
  ): Promise<void> {
    const needed = Math.max(...items.map((i) => i.offset + HASH_SIZE));
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.#getRow(level, tile);
      const have = cur?.bytes ?? new Uint8Array(0);
      const out = new Uint8Array(Math.max(needed, have.length));
      out.set(have);
      let changed = false;
      for (const { offset, hash } of items) {
        if (offset < have.length) {
          if (Buffer.compare(Buffer.from(have.subarray(offset, offset + HASH_SIZE)), Buffer.from(hash)) !== 0) {
            throw new MerkleError('merkle-bad-state', `tile ${key} already holds another hash at offset ${offset}`);
          }
        } else {
          out.set(hash, offset);
          changed = true;
        }
      }
      // No gaps: every slot below `needed` must be filled by the row or by this write.
      const written = new Set(items.map((i) => i.offset));
      for (let off = have.length; off < out.length; off += HASH_SIZE) {
        if (!written.has(off))
          throw new MerkleError('merkle-bad-state', `tile ${key} would get a gap at offset ${off}`);
      }
      if (!changed) return;
      const stored = cur
        ? await this.#kv.update(key, out, cur.revision, 'log-tiles write')
        : await this.#kv.create(key, out, 'log-tiles write');
      if (stored === undefined) continue; // someone else wrote the row; re-read and merge
      this.#remember(key, out);
      return;
    }
    throw new LiaisonError('unavailable', { detail: `log-tiles write ${key}: too many concurrent updates` });
  }

  /** The hash of node (level, index), or undefined when it is not stored (yet). */
  async node(level: number, index: number): Promise<Uint8Array | undefined> {
    const tile = Math.floor(index / TILE_WIDTH);
    const key = tileKey(level, tile);
    const offset = (index % TILE_WIDTH) * HASH_SIZE;
    let row = this.#cache.get(key)?.bytes;
    if (!row || row.length < offset + HASH_SIZE) {
      const got = await this.#getRow(level, tile);
      if (!got) return undefined;
      if (got.bytes.length % HASH_SIZE !== 0 || got.bytes.length > TILE_WIDTH * HASH_SIZE)
        throw new LiaisonError('log-state-invalid', { detail: `log-tiles ${key} is not a row of hashes` });
      row = got.bytes;
      this.#remember(key, row);
    }
    if (row.length < offset + HASH_SIZE) return undefined;
    return row.slice(offset, offset + HASH_SIZE);
  }

  /** A NodeReader for merkle.ts' async proof builders; a missing node is a storage fault. */
  reader(): AsyncNodeReader {
    return async (level, index) => {
      const h = await this.node(level, index);
      if (!h) throw new LiaisonError('unavailable', { detail: `log-tiles: node ${level}/${index} is not stored` });
      return h;
    };
  }

  /** Leaf hashes [start, end) (level 0), for exports. */
  async leafHashes(start: number, end: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let i = start; i < end; i++) {
      const h = await this.node(0, i);
      if (!h) throw new LiaisonError('unavailable', { detail: `log-tiles: leaf ${i} is not stored` });
      out.push(h);
    }
    return out;
  }
}
