/**
 * The CHECKPOINTS stream and the notice index, as the checkpointer writes them
 * and the auditor API reads them. NATS calls only; the format is checkpoint.ts.
 *
 * Each CHECKPOINTS message is one signed note (the bytes auditors verify),
 * with headers:
 *   Liaison-Compact-Range  the CompactRange state at that size (JSON), so a
 *                          new leader resumes without re-reading the log
 *   Liaison-Tree-Size      the tree size, for operators
 */

import { LiaisonError } from '../core/errors.js';
import type { KvBucket, StorePort, StoredMessage, StreamState } from '../core/store-port.js';
import { CHECKPOINT_SUBJECT, STREAMS } from '../core/stream-names.js';
import { CheckpointVerifier, type PublicSigningJwk, type VerifiedCheckpoint } from './checkpoint.js';
import { CompactRange } from './compact-range.js';
import { hashEqual } from './merkle.js';

export const RANGE_HEADER = 'Liaison-Compact-Range';
export const SIZE_HEADER = 'Liaison-Tree-Size';
/** KV bucket: notice id → log index, written by the checkpointer before the checkpoint that covers it. */
export const INDEX_BUCKET = 'log-index';
/** Most invalid CHECKPOINTS messages passed over, newest first, before latest() gives up. */
const MAX_SKIPPED = 1000;

export interface StoredCheckpoint {
  /** CHECKPOINTS stream sequence. */
  seq: number;
  note: string;
  verified: VerifiedCheckpoint;
}

export interface LatestCheckpoint extends StoredCheckpoint {
  range: CompactRange;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

export class CheckpointStore {
  readonly #bus: StorePort;
  readonly #keys: () => readonly PublicSigningJwk[];
  readonly #origin: string;
  #verifier: { keys: readonly PublicSigningJwk[]; verifier: CheckpointVerifier } | undefined;
  readonly #index: KvBucket;

  private constructor(bus: StorePort, origin: string, keys: () => readonly PublicSigningJwk[], index: KvBucket) {
    this.#bus = bus;
    this.#origin = origin;
    this.#keys = keys;
    this.#index = index;
    void this.verifier; // a bad key list fails at open, not at the first read
  }

  /**
   * `keys`: the broker's published signing keys (its key history), or a function
   * giving the current list (a live keyring: a rotated signing key is taken up
   * at once): a stored checkpoint must verify.
   */
  static async open(
    bus: StorePort,
    origin: string,
    keys: readonly PublicSigningJwk[] | (() => readonly PublicSigningJwk[]),
    replicas = 1,
  ): Promise<CheckpointStore> {
    const index = await bus.bucket(INDEX_BUCKET, { history: 1, replicas });
    return new CheckpointStore(bus, origin, typeof keys === 'function' ? keys : () => keys, index);
  }

  get verifier(): CheckpointVerifier {
    const keys = this.#keys();
    if (this.#verifier?.keys !== keys) this.#verifier = { keys, verifier: new CheckpointVerifier(this.#origin, keys) };
    return this.#verifier.verifier;
  }

  /**
   * The newest valid checkpoint, verified, with its compact range (checked
   * against its root); null when none yet. A CHECKPOINTS message that is not
   * one (junk from someone with NATS access: not a signed note, a note that
   * does not verify, a range that does not match its root) is passed over, and
   * the one before it is served; more than MAX_SKIPPED such in a row is
   * `log-state-invalid`.
   */
  async latest(): Promise<LatestCheckpoint | null> {
    let sm = await this.#bus.lastMessage(STREAMS.checkpoints, CHECKPOINT_SUBJECT, 'get last checkpoint');
    if (!sm) return null;
    for (let skipped = 0; ; skipped++) {
      const valid = this.#asCheckpoint(sm);
      if (valid) return valid;
      if (skipped >= MAX_SKIPPED)
        throw new LiaisonError('log-state-invalid', {
          detail: `CHECKPOINTS: no valid checkpoint in the ${MAX_SKIPPED + 1} messages up to #${sm.seq}`,
        });
      let prev: StoredMessage | null = null;
      for (let seq = sm.seq - 1; seq >= 1 && !prev; seq--) prev = await this.#bus.getMessage(STREAMS.checkpoints, seq);
      if (!prev) return null;
      sm = prev;
    }
  }

  #asCheckpoint(sm: StoredMessage): LatestCheckpoint | undefined {
    try {
      const note = dec.decode(sm.data);
      const verified = this.verifier.verify(note);
      const range = CompactRange.fromJSON(JSON.parse(sm.header?.get(RANGE_HEADER) || 'null'));
      if (range.size !== verified.checkpoint.treeSize || !hashEqual(range.root(), verified.checkpoint.rootHash))
        throw new Error('stored compact range does not match the signed root');
      return { seq: sm.seq, note, verified, range };
    } catch {
      return undefined;
    }
  }

  /** The last sequence of CHECKPOINTS, whatever it holds (the expected-last-sequence of the next publish); 0 when empty. */
  async lastSeq(): Promise<number> {
    return (await this.#info()).lastSeq;
  }

  async #info(): Promise<StreamState> {
    const info = await this.#bus.streamInfo(STREAMS.checkpoints);
    if (!info) throw new LiaisonError('unavailable', { detail: `${STREAMS.checkpoints} info: no such stream` });
    return info;
  }

  /** Every checkpoint note, in publication order (for exports and audits). Not verified here: the auditor does that. */
  async *all(): AsyncGenerator<{ seq: number; note: string }> {
    const info = await this.#info();
    for (let seq = info.firstSeq; seq > 0 && seq <= info.lastSeq; seq++) {
      const m = await this.#bus.getMessage(STREAMS.checkpoints, seq);
      if (m) yield { seq, note: dec.decode(m.data) };
    }
  }

  /**
   * Publish a signed note, only if the stream's last sequence is still
   * `expectLastSeq` (0 for the first): two leaders can never interleave.
   * Returns the new sequence.
   */
  async publish(note: string, range: CompactRange, expectLastSeq: number): Promise<number> {
    const ack = await this.#bus.publish(CHECKPOINT_SUBJECT, enc.encode(note), {
      msgID: `checkpoint-${range.size}-${Buffer.from(range.root()).toString('hex').slice(0, 32)}`,
      headers: { [RANGE_HEADER]: JSON.stringify(range.toJSON()), [SIZE_HEADER]: String(range.size) },
      expectLastSequence: expectLastSeq,
    });
    return ack.seq;
  }

  /**
   * Record notice id → log index, create-only: a record is never overwritten.
   * Returns, per entry in order, whether the id is now recorded at that index
   * (created, or already there with the same index: a new leader re-folding)
   * or the value found instead (another index, or junk): a second entry for
   * one notice id.
   */
  async claimIndex(
    entries: readonly { noticeId: string; index: number }[],
  ): Promise<({ ok: true } | { ok: false; held: string })[]> {
    const one = async (e: { noticeId: string; index: number }): Promise<{ ok: true } | { ok: false; held: string }> => {
      const value = String(e.index);
      if ((await this.#index.create(e.noticeId, enc.encode(value))) !== undefined) return { ok: true };
      const held = await this.#index.get(e.noticeId);
      const v = held && held.operation === 'PUT' ? dec.decode(held.value) : '(deleted)';
      return v === value ? { ok: true } : { ok: false, held: v.slice(0, 32) };
    };
    const out: ({ ok: true } | { ok: false; held: string })[] = [];
    for (let i = 0; i < entries.length; i += 64) out.push(...(await Promise.all(entries.slice(i, i + 64).map(one))));
    return out;
  }

  /** The log index of a notice id (a validated UUID), or undefined. */
  async indexOf(noticeId: string): Promise<number | undefined> {
    const e = await this.#index.get(noticeId);
    if (!e || e.operation !== 'PUT') return undefined;
    const text = dec.decode(e.value);
    const n = Number(text);
    if (!/^(0|[1-9][0-9]{0,15})$/.test(text) || !Number.isSafeInteger(n))
      throw new LiaisonError('log-state-invalid', {
        detail: `log-index ${noticeId} holds a value that is not a log index`,
      });
    return n;
  }
}
