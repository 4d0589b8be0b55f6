/**
 * How far the signed checkpoints trail the log: the entries LOG holds that no
 * checkpoint covers yet, and how long the oldest of them has waited (since
 * LOG stored it). Read from the store, not from the checkpointer's memory, so
 * any gateway reports it, a halted or dead leader included.
 *
 * The newest checkpoint's size is read from its Liaison-Tree-Size header,
 * unverified: a gauge for operators, never evidence (auditors verify the
 * notes themselves).
 */

import type { StorePort } from '../core/store-port.js';
import { CHECKPOINT_SUBJECT, STREAMS } from '../core/stream-names.js';
import { SIZE_HEADER } from './checkpoint-store.js';

export interface CheckpointLag {
  /** LOG entries no checkpoint covers yet. */
  entries: number;
  /** Seconds since LOG stored the oldest of them; 0 when there is none, -1 when its time could not be read. */
  oldestSeconds: number;
}

const SIZE = /^(0|[1-9][0-9]{0,15})$/;

export async function readCheckpointLag(
  bus: Pick<StorePort, 'streamInfo' | 'lastMessage' | 'getMessage'>,
  now = Date.now(),
): Promise<CheckpointLag> {
  const log = await bus.streamInfo(STREAMS.log);
  if (!log) return { entries: 0, oldestSeconds: 0 };
  const cp = await bus.lastMessage(STREAMS.checkpoints, CHECKPOINT_SUBJECT, 'get last checkpoint');
  const header = cp?.header?.get(SIZE_HEADER) ?? '';
  const covered = SIZE.test(header) ? Number(header) : 0;
  const entries = Math.max(0, log.lastSeq - covered);
  if (entries === 0) return { entries, oldestSeconds: 0 };
  // LOG sequence n holds log index n - 1: the first uncovered entry is at sequence `covered` + 1.
  const oldest = await bus.getMessage(STREAMS.log, covered + 1);
  const stored = oldest?.time?.getTime();
  return {
    entries,
    oldestSeconds: stored !== undefined && Number.isFinite(stored) ? Math.max(0, (now - stored) / 1000) : -1,
  };
}
