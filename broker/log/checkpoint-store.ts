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

import type { KV } from 'nats';

import { LiaisonError } from '../core/errors.js';
import type { NatsBus } from '../nats/connection.js';
import { CHECKPOINT_SUBJECT, STREAMS } from '../nats/streams.js';
import { CheckpointVerifier, type PublicSigningJwk, type VerifiedCheckpoint } from './checkpoint.js';
import { CompactRange } from './compact-range.js';
import { hashEqual } from './merkle.js';

export const RANGE_HEADER = 'Liaison-Compact-Range';
export const SIZE_HEADER = 'Liaison-Tree-Size';
/** KV bucket: notice id → log index, written by the checkpointer before the checkpoint that covers it. */
export const INDEX_BUCKET = 'log-index';

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

const unavailable = (e: unknown, what: string) => new LiaisonError('unavailable', { detail: `${what}: ${(e as Error)?.message ?? String(e)}`, cause: e });
const isNotFound = (e: unknown) => (e as { code?: string }).code === '404' || /no message found/i.test((e as Error)?.message ?? '');

export class CheckpointStore {
  readonly #bus: NatsBus;
  readonly #keys: () => readonly PublicSigningJwk[];
  readonly #origin: string;
  #verifier: { keys: readonly PublicSigningJwk[]; verifier: CheckpointVerifier } | undefined;
  readonly #index: KV;

  private constructor(bus: NatsBus, origin: string, keys: () => readonly PublicSigningJwk[], index: KV) {
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
  static async open(bus: NatsBus, origin: string, keys: readonly PublicSigningJwk[] | (() => readonly PublicSigningJwk[]), replicas = 1): Promise<CheckpointStore> {
    const index = await bus.kv(INDEX_BUCKET, { history: 1, replicas });
    return new CheckpointStore(bus, origin, typeof keys === 'function' ? keys : () => keys, index);
  }

  get verifier(): CheckpointVerifier {
    const keys = this.#keys();
    if (this.#verifier?.keys !== keys) this.#verifier = { keys, verifier: new CheckpointVerifier(this.#origin, keys) };
    return this.#verifier.verifier;
  }

  /** The newest checkpoint, verified, with its compact range (checked against its root); null when none yet. */
  async latest(): Promise<LatestCheckpoint | null> {
    let sm;
    try {
      sm = await this.#bus.jsm.streams.getMessage(STREAMS.checkpoints, { last_by_subj: CHECKPOINT_SUBJECT });
    } catch (e) {
      if (isNotFound(e)) return null;
      throw unavailable(e, 'get last checkpoint');
    }
    const note = dec.decode(sm.data);
    const verified = this.verifier.verify(note);
    const range = CompactRange.fromJSON(JSON.parse(sm.header?.get(RANGE_HEADER) ?? 'null'));
    if (range.size !== verified.checkpoint.treeSize || !hashEqual(range.root(), verified.checkpoint.rootHash)) {
      throw new LiaisonError('internal', { detail: `CHECKPOINTS#${sm.seq}: stored compact range does not match the signed root` });
    }
    return { seq: sm.seq, note, verified, range };
  }

  /** Every checkpoint note, in publication order (for exports and audits). Not verified here: the auditor does that. */
  async *all(): AsyncGenerator<{ seq: number; note: string }> {
    let info;
    try {
      info = await this.#bus.jsm.streams.info(STREAMS.checkpoints);
    } catch (e) {
      throw unavailable(e, 'CHECKPOINTS info');
    }
    for (let seq = info.state.first_seq; seq > 0 && seq <= info.state.last_seq; seq++) {
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

  async putIndex(entries: readonly { noticeId: string; index: number }[]): Promise<void> {
    try {
      for (let i = 0; i < entries.length; i += 64) {
        await Promise.all(entries.slice(i, i + 64).map((e) => this.#index.put(e.noticeId, enc.encode(String(e.index)))));
      }
    } catch (e) {
      throw unavailable(e, 'log-index put');
    }
  }

  /** The log index of a notice id (a validated UUID), or undefined. */
  async indexOf(noticeId: string): Promise<number | undefined> {
    let e;
    try {
      e = await this.#index.get(noticeId);
    } catch (err) {
      throw unavailable(err, 'log-index get');
    }
    if (!e || e.operation !== 'PUT') return undefined;
    const n = Number(dec.decode(e.value));
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  }
}
