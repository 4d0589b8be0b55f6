/**
 * The checkpointer: one leader at a time (lease `checkpointer` in KV `leases`)
 * folds the LOG stream's entries, in order, into a CompactRange, stores every
 * completed tree node in the tiles, indexes notice ids, and publishes a signed
 * checkpoint to CHECKPOINTS every `everyEntries` entries or `everyMs` ms
 * (whichever comes first, and only when the tree grew).
 *
 * Resuming: a new leader (after a restart, a crash or a lost lease) reads the
 * last checkpoint, restores the compact range stored with it, and continues
 * from LOG sequence size + 1. Tiles and index entries written after that
 * checkpoint by a previous leader are rewritten with the same values.
 *
 * Order of writes per checkpoint: tiles, index, lease renewal, then the
 * checkpoint (with expected-last-sequence, so a stale leader cannot publish).
 * Everything a checkpoint covers is therefore stored before it is visible.
 */

import { randomUUID } from 'node:crypto';
import { DeliverPolicy, type ConsumerMessages } from 'nats';
import type { Logger } from 'pino';

import { LiaisonError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { BrokerKeyring } from '../keys/broker-keys.js';
import type { NatsBus } from '../nats/connection.js';
import { openLease, type Lease } from '../nats/lease.js';
import { STREAMS } from '../nats/streams.js';
import { signCheckpoint } from './checkpoint.js';
import { CheckpointStore } from './checkpoint-store.js';
import { CompactRange } from './compact-range.js';
import { decodeEntry } from './entry.js';
import { leafHash } from './merkle.js';
import { TileStore } from './tiles.js';
import { sleep } from '../core/sleep.js';

export const CHECKPOINTER_LEASE = 'checkpointer';

export interface CheckpointerOptions {
  bus: NatsBus;
  keyring: BrokerKeyring;
  logger: Logger;
  /** The log's origin line and signing key name (the broker id). */
  origin: string;
  everyEntries: number;
  everyMs: number;
  leaseTtlMs: number;
  replicas?: number;
  /** Lease holder id; a random one per instance by default. */
  holder?: string;
}

export interface CheckpointerStatus {
  leader: boolean;
  treeSize: number;
  checkpointSize: number;
  /**
   * Set when checkpointing stopped on an entry it must not fold (forged,
   * unsigned or malformed): where and why. Checkpointing stays stopped until an
   * operator acts (docs/audit.md); null while it runs.
   */
  halted: { index: number; reason: string } | null;
}

/** The notice id an entry commits to, if any (the tree hashes every entry whatever it holds). */
function noticeIdOf(bytes: Uint8Array): string | undefined {
  try {
    const e = decodeEntry(bytes) as { kind?: unknown; notice_id?: unknown };
    // Only a notice's own entry names its position; an ack of it must not take its place in the index.
    return e.kind === 'notice' && isUuid(e.notice_id) ? e.notice_id : undefined;
  } catch {
    return undefined;
  }
}


export class Checkpointer {
  readonly #o: CheckpointerOptions;
  readonly #lease: Lease;
  readonly #store: CheckpointStore;
  readonly #tiles: TileStore;
  readonly #abort = new AbortController();
  readonly #log: Logger;
  #loop: Promise<void> | undefined;
  #fetch: ConsumerMessages | undefined;
  #status: CheckpointerStatus = { leader: false, treeSize: 0, checkpointSize: 0, halted: null };

  private constructor(o: CheckpointerOptions, lease: Lease, store: CheckpointStore, tiles: TileStore) {
    this.#o = o;
    this.#lease = lease;
    this.#store = store;
    this.#tiles = tiles;
    this.#log = o.logger.child({ component: 'checkpointer', holder: lease.holder });
  }

  static async create(o: CheckpointerOptions): Promise<Checkpointer> {
    if (!Number.isSafeInteger(o.everyEntries) || o.everyEntries < 1) throw new Error('checkpointer: everyEntries must be >= 1');
    if (!Number.isSafeInteger(o.everyMs) || o.everyMs < 100) throw new Error('checkpointer: everyMs must be >= 100');
    const replicas = o.replicas ?? 1;
    const lease = await openLease(o.bus, CHECKPOINTER_LEASE, o.holder ?? `${o.origin}-${randomUUID()}`, o.leaseTtlMs, replicas);
    const store = await CheckpointStore.open(o.bus, o.origin, () => o.keyring.verificationKeys, replicas);
    const tiles = await TileStore.open(o.bus, replicas);
    return new Checkpointer(o, lease, store, tiles);
  }

  get status(): CheckpointerStatus {
    return { ...this.#status };
  }

  get holder(): string {
    return this.#lease.holder;
  }

  start(): void {
    if (this.#loop) return;
    this.#loop = this.#run();
  }

  /** Stop leading (releasing the lease) and wait for the loop to end. */
  async close(): Promise<void> {
    this.#abort.abort();
    this.#fetch?.stop();
    await this.#loop;
    await this.#lease.release().catch(() => undefined);
  }

  get #renewEveryMs(): number {
    return Math.max(100, Math.floor(this.#lease.ttlMs / 3));
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        if (await this.#lease.acquire()) {
          this.#log.info({ event: 'checkpointer-leader' }, 'checkpointer lease acquired');
          this.#status.leader = true;
          await this.#lead(signal);
        }
      } catch (e) {
        this.#log.warn({ event: 'checkpointer-error', code: (e as LiaisonError).code, err: { message: (e as Error).message } }, 'checkpointer stopped leading after an error');
        await this.#lease.release().catch(() => undefined);
      }
      if (this.#status.leader) this.#log.info({ event: 'checkpointer-follower' }, 'checkpointer no longer leader');
      this.#status.leader = false;
      await sleep(this.#renewEveryMs, signal);
    }
  }

  async #lead(signal: AbortSignal): Promise<void> {
    const { bus, everyEntries, everyMs } = this.#o;
    const latest = await this.#store.latest();
    const range = latest?.range ?? CompactRange.empty();
    let cpSeq = latest?.seq ?? 0;
    let cpSize = range.size;
    let cpTime = latest?.verified.checkpoint.timestamp ?? 0;
    let cpAt = Date.now();
    let renewedAt = Date.now();
    let nodes: { level: number; index: number; hash: Uint8Array }[] = [];
    let index: { noticeId: string; index: number }[] = [];
    this.#status.checkpointSize = cpSize;
    this.#status.treeSize = range.size;

    const checkpoint = async (): Promise<boolean> => {
      await this.#tiles.write(nodes);
      await this.#store.putIndex(index);
      nodes = [];
      index = [];
      if (!(await this.#lease.renew())) return false;
      renewedAt = Date.now();
      const timestamp = Math.max(Date.now(), cpTime);
      const note = await signCheckpoint({ origin: this.#o.origin, treeSize: range.size, rootHash: range.root(), timestamp }, this.#o.keyring.signing.privateKey, this.#o.keyring.signing.publicJwk);
      cpSeq = await this.#store.publish(note, range, cpSeq);
      cpSize = range.size;
      cpTime = timestamp;
      cpAt = Date.now();
      this.#status.checkpointSize = cpSize;
      this.#log.info({ event: 'checkpoint', tree_size: cpSize, seq: cpSeq }, 'checkpoint published');
      return true;
    };

    // The empty tree gets a checkpoint too, so that auditors always find one.
    if (!latest && !(await checkpoint())) return;

    const consumer = await bus.js.consumers.get(STREAMS.log, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: range.size + 1 });
    while (!signal.aborted) {
      if (Date.now() - renewedAt >= this.#renewEveryMs) {
        if (!(await this.#lease.renew())) return;
        renewedAt = Date.now();
      }
      const batch = await consumer.fetch({ max_messages: Math.min(everyEntries, 512), expires: Math.max(1000, Math.min(everyMs, this.#renewEveryMs)) });
      this.#fetch = batch;
      for await (const m of batch) {
        if (m.seq !== range.size + 1) {
          throw new LiaisonError('internal', { detail: `LOG#${m.seq} arrived when ${range.size + 1} was expected` });
        }
        const leaf = leafHash(m.data);
        range.append(leaf, (level, i, hash) => nodes.push({ level, index: i, hash }));
        const noticeId = noticeIdOf(m.data);
        if (noticeId !== undefined) index.push({ noticeId, index: m.seq - 1 });
        this.#status.treeSize = range.size;
        if (range.size - cpSize >= everyEntries) {
          if (!(await checkpoint())) {
            batch.stop();
            return;
          }
        }
        if (signal.aborted) break;
      }
      this.#fetch = undefined;
      if (range.size > cpSize && Date.now() - cpAt >= everyMs && !signal.aborted) {
        if (!(await checkpoint())) return;
      }
    }
  }
}
