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
import type { Logger } from 'pino';

import { LiaisonError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { BrokerKeyring } from '../keys/broker-keys.js';
import type { ConsumerPort, MessageBatch } from '../core/consumer-port.js';
import type { StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { LeaderLoop, type LeaderTerm } from '../leader/leader-loop.js';
import type { Lease, LeasePort } from '../leader/lease.js';
import { signCheckpoint } from './checkpoint.js';
import { CheckpointStore } from './checkpoint-store.js';
import { CompactRange } from './compact-range.js';
import { decodeEntry, encodeEntry, LOG_ENTRY_KINDS, type LogEntry } from './entry.js';
import { ENTRY_SIGNATURE_HEADER, EntrySignatureError, EntrySignatureVerifier } from './entry-signature.js';
import { leafHash } from './merkle.js';
import { TileStore } from './tiles.js';
import { sleep } from '../core/sleep.js';

export const CHECKPOINTER_LEASE = 'checkpointer';
/** How long an entry signed by a kid this instance does not know is retried before it halts (a rotation may not have reached it yet). */
export const UNKNOWN_KID_GRACE_MS = 30_000;

export interface CheckpointerOptions {
  /** The message store: LOG read in order, CHECKPOINTS and the tiles written, the lease held. */
  bus: StorePort & ConsumerPort & LeasePort;
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
  readonly #leader: LeaderLoop;
  readonly #holder: string;
  /** The lease's TTL in force (the bucket's), in ms. */
  readonly #leaseTtlMs: number;
  readonly #store: CheckpointStore;
  readonly #tiles: TileStore;
  readonly #log: Logger;
  #fetch: MessageBatch<unknown> | undefined;
  #status: CheckpointerStatus = { leader: false, treeSize: 0, checkpointSize: 0, halted: null };

  private constructor(o: CheckpointerOptions, lease: Lease, store: CheckpointStore, tiles: TileStore) {
    this.#o = o;
    this.#holder = lease.holder;
    this.#leaseTtlMs = lease.ttlMs;
    this.#store = store;
    this.#tiles = tiles;
    const log = o.logger.child({ component: 'checkpointer' });
    this.#log = log.child({ holder: lease.holder });
    // The loop names the holder in its own lines: given the logger without it, so no line has `holder` twice.
    this.#leader = new LeaderLoop({
      key: CHECKPOINTER_LEASE,
      holder: lease.holder,
      ttlMs: lease.ttlMs,
      logger: log,
      open: async () => lease,
    });
  }

  static async create(o: CheckpointerOptions): Promise<Checkpointer> {
    if (!Number.isSafeInteger(o.everyEntries) || o.everyEntries < 1)
      throw new Error('checkpointer: everyEntries must be >= 1');
    if (!Number.isSafeInteger(o.everyMs) || o.everyMs < 100) throw new Error('checkpointer: everyMs must be >= 100');
    const replicas = o.replicas ?? 1;
    const lease = await o.bus.openLease(
      CHECKPOINTER_LEASE,
      o.holder ?? `${o.origin}-${randomUUID()}`,
      o.leaseTtlMs,
      replicas,
    );
    const store = await CheckpointStore.open(o.bus, o.origin, () => o.keyring.verificationKeys, replicas);
    const tiles = await TileStore.open(o.bus, replicas);
    return new Checkpointer(o, lease, store, tiles);
  }

  get status(): CheckpointerStatus {
    return { ...this.#status };
  }

  get holder(): string {
    return this.#holder;
  }

  start(): void {
    this.#leader.start((term) => this.#lead(term));
  }

  /** Stop leading (releasing the lease) and wait for the loop to end. */
  async close(): Promise<void> {
    await this.#leader.close();
  }

  /** The leader loop's renewal period: also the longest a fetch waits, so that the loop notices a lost lease in time. */
  get #renewEveryMs(): number {
    return Math.max(100, Math.floor(this.#leaseTtlMs / 3));
  }

  /** One term as leader: fold (again, after a transient refusal) until the lease is lost or the fold stops. */
  async #lead(term: LeaderTerm): Promise<void> {
    const stopFetch = () => this.#fetch?.stop();
    term.signal.addEventListener('abort', stopFetch, { once: true });
    this.#log.info({ event: 'checkpointer-leader' }, 'checkpointer lease acquired');
    this.#status.leader = true;
    try {
      while (!term.signal.aborted && (await this.#fold(term)) === 'again');
    } catch (e) {
      this.#log.warn(
        { event: 'checkpointer-error', code: (e as LiaisonError).code, err: { message: (e as Error).message } },
        'checkpointer stopped leading after an error',
      );
    } finally {
      term.signal.removeEventListener('abort', stopFetch);
      this.#status.leader = false;
      this.#log.info({ event: 'checkpointer-follower' }, 'checkpointer no longer leader');
    }
  }

  /**
   * Fold LOG from the newest checkpoint on. 'again': read the log anew shortly (an entry may become foldable); 'stop':
   * step down (the lease was lost).
   */
  async #fold(term: LeaderTerm): Promise<'again' | 'stop'> {
    const { signal } = term;
    const { bus, everyEntries, everyMs } = this.#o;
    const latest = await this.#store.latest();
    const range = latest?.range ?? CompactRange.empty();
    // The next publish expects CHECKPOINTS' real last sequence: junk after the newest valid checkpoint must not block it.
    let cpSeq = await this.#store.lastSeq();
    let cpSize = range.size;
    let cpTime = latest?.verified.checkpoint.timestamp ?? 0;
    let cpAt = Date.now();
    let nodes: { level: number; index: number; hash: Uint8Array }[] = [];
    this.#status.checkpointSize = cpSize;
    this.#status.treeSize = range.size;

    const checkpoint = async (): Promise<boolean> => {
      await this.#tiles.write(nodes);
      nodes = [];
      // Still the leader right before the write only the leader may make.
      if (!(await term.renew())) return false;
      const timestamp = Math.max(Date.now(), cpTime);
      const note = await signCheckpoint(
        { origin: this.#o.origin, treeSize: range.size, rootHash: range.root(), timestamp },
        this.#o.keyring.signing.privateKey,
        this.#o.keyring.signing.publicJwk,
      );
      cpSeq = await this.#store.publish(note, range, cpSeq);
      cpSize = range.size;
      cpTime = timestamp;
      cpAt = Date.now();
      this.#status.checkpointSize = cpSize;
      this.#log.info({ event: 'checkpoint', tree_size: cpSize, seq: cpSeq }, 'checkpoint published');
      return true;
    };

    // The empty tree gets a checkpoint too, so that auditors always find one.
    if (!latest && !(await checkpoint())) return 'stop';

    const reader = await bus.orderedReader(STREAMS.log, range.size + 1);
    while (!signal.aborted) {
      const batch = await reader.fetch({
        maxMessages: Math.min(everyEntries, 512),
        expiresMs: Math.max(1000, Math.min(everyMs, this.#renewEveryMs)),
      });
      this.#fetch = batch;
      const got: { seq: number; subject: string; data: Uint8Array; signature: string | undefined }[] = [];
      for await (const m of batch) {
        got.push({
          seq: m.seq,
          subject: m.subject,
          data: m.data,
          signature: m.headers?.get(ENTRY_SIGNATURE_HEADER) || undefined,
        });
        if (signal.aborted) break;
      }
      this.#fetch = undefined;
      if (signal.aborted) break;
      // Check every entry before it is folded: order, signature, form, and its notice id's one place in the index.
      const { good, refused } = await this.#admit(got, range.size);
      for (const m of good) {
        range.append(leafHash(m.data), (level, i, hash) => nodes.push({ level, index: i, hash }));
        this.#status.treeSize = range.size;
        if (range.size - cpSize >= everyEntries && !(await checkpoint())) return 'stop';
      }
      if (refused) {
        // What was folded before it is checkpointed; the refused entry and everything after it are not, until an operator acts.
        if (range.size > cpSize && !(await checkpoint())) return 'stop';
        if (refused.transient && Date.now() - refused.since < UNKNOWN_KID_GRACE_MS) {
          // A kid this instance does not know yet may be a rotation another instance just made: read the log again shortly.
          await sleep(1000, signal);
          return 'again';
        }
        this.#halt(refused.index, refused.reason);
        // Halted, still the leader (the loop renews the lease), so that no other instance folds past the refused entry.
        while (!signal.aborted) await sleep(this.#renewEveryMs, signal);
        return 'stop';
      }
      if (range.size > cpSize && Date.now() - cpAt >= everyMs && !signal.aborted) {
        if (!(await checkpoint())) return 'stop';
      }
    }
    return 'stop';
  }

  readonly #verifier = new EntrySignatureVerifier(() => this.#o.keyring.verificationKeys);
  /** First sight of an entry refused for an unknown kid (index → ms). */
  #unknownKidSince: { index: number; at: number } | undefined;

  /**
   * The longest prefix of `msgs` that may be folded, and the first entry that
   * may not, with why. `expected`: the tree size (the first message must be
   * LOG sequence expected + 1).
   */
  async #admit(
    msgs: readonly { seq: number; subject: string; data: Uint8Array; signature: string | undefined }[],
    expected: number,
  ) {
    const good: (typeof msgs)[number][] = [];
    let refused: { index: number; reason: string; transient: boolean; since: number } | undefined;
    const ids = new Map<string, number>();
    for (const m of msgs) {
      if (m.seq !== expected + good.length + 1) {
        throw new LiaisonError('internal', {
          detail: `LOG#${m.seq} arrived when ${expected + good.length + 1} was expected`,
        });
      }
      const index = m.seq - 1;
      const { why, transient } = this.#check(m);
      if (why) {
        if (!transient || this.#unknownKidSince?.index !== index) this.#unknownKidSince = { index, at: Date.now() };
        refused = { index, reason: why, transient, since: this.#unknownKidSince.at };
        break;
      }
      const id = noticeIdOf(m.data);
      if (id !== undefined) {
        if (ids.has(id)) {
          refused = {
            index,
            reason: `entry-duplicate-notice: notice id already at index ${ids.get(id)}`,
            transient: false,
            since: Date.now(),
          };
          break;
        }
        ids.set(id, index);
      }
      good.push(m);
    }
    // The index is create-only: a notice id already recorded at another position stops the fold there.
    const claims = [...ids.entries()].map(([noticeId, index]) => ({ noticeId, index }));
    const results = await this.#store.claimIndex(claims);
    const conflict = claims.findIndex((_, i) => !results[i]!.ok);
    if (conflict >= 0) {
      const c = claims[conflict]!;
      const held = (results[conflict] as { held: string }).held;
      const where = /^(0|[1-9][0-9]{0,15})$/.test(held) ? `index ${held}` : 'a value that is not an index';
      const cut = good.findIndex((m) => m.seq - 1 === c.index);
      good.length = cut;
      refused = {
        index: c.index,
        reason: `entry-duplicate-notice: the log-index already holds ${where} for this notice id`,
        transient: false,
        since: Date.now(),
      };
    }
    return { good, refused };
  }

  /** Why an entry must not be folded, or undefined when it may. Never reads content into the reason. */
  #check(m: { subject: string; data: Uint8Array; signature: string | undefined }): {
    why: string | undefined;
    transient: boolean;
  } {
    try {
      this.#verifier.verify(m.data, m.signature);
    } catch (e) {
      if (e instanceof EntrySignatureError) return { why: `${e.code}: ${e.message}`, transient: e.unknownKid };
      return { why: 'entry-signature-invalid', transient: false };
    }
    return { why: this.#checkForm(m), transient: false };
  }

  #checkForm(m: { subject: string; data: Uint8Array }): string | undefined {
    let entry: { kind?: unknown; notice_id?: unknown };
    try {
      entry = decodeEntry(m.data);
      if (Buffer.compare(Buffer.from(encodeEntry(entry as LogEntry)), Buffer.from(m.data)) !== 0)
        return 'entry-malformed: not canonical JSON';
    } catch {
      return 'entry-malformed: not a JSON entry';
    }
    if (typeof entry !== 'object' || entry === null || !(LOG_ENTRY_KINDS as readonly unknown[]).includes(entry.kind))
      return 'entry-malformed: unknown kind';
    if (m.subject !== `log.${String(entry.kind)}`) return 'entry-malformed: subject does not match its kind';
    if (entry.kind === 'notice' && !isUuid(entry.notice_id)) return 'entry-malformed: notice id is not a UUID';
    return undefined;
  }

  #halt(index: number, reason: string): void {
    this.#status.halted = { index, reason };
    this.#log.error(
      { event: 'log-entry-refused', stream: STREAMS.log, seq: index + 1, index, reason },
      'checkpointing stopped: a LOG entry fails its checks and is not folded (see docs/audit.md)',
    );
  }
}
