/**
 * The checkpointer's lag (broker/log/checkpoint-lag.ts) sampled through a level from the bench's own NATS
 * connection: the most entries that waited for a signed checkpoint and the longest any waited, then one reading
 * once the level and the router's catch-up are over.
 */
import type { StorePort } from '../broker/core/store-port.js';
import { readCheckpointLag, type CheckpointLag } from '../broker/log/checkpoint-lag.js';
import { round } from './stats.js';

export interface CheckpointLagSeen {
  maxEntries: number;
  maxOldestSeconds: number;
  /** After the router's catch-up. */
  atEnd: CheckpointLag;
  samples: number;
}

export function watchCheckpointLag(bus: Pick<StorePort, 'streamInfo' | 'lastMessage' | 'getMessage'>, everyMs = 250) {
  let maxEntries = 0;
  let maxOldestSeconds = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const lag = await readCheckpointLag(bus);
        maxEntries = Math.max(maxEntries, lag.entries);
        maxOldestSeconds = Math.max(maxOldestSeconds, lag.oldestSeconds);
        samples++;
      } catch {
        // A missed sample: the next one counts.
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop(): Promise<CheckpointLagSeen> {
      stopped = true;
      await loop;
      const atEnd = await readCheckpointLag(bus);
      return {
        maxEntries: Math.max(maxEntries, atEnd.entries),
        maxOldestSeconds: round(Math.max(maxOldestSeconds, atEnd.oldestSeconds), 2),
        atEnd: { entries: atEnd.entries, oldestSeconds: round(atEnd.oldestSeconds, 2) },
        samples,
      };
    },
  };
}

export const fmtCheckpointLag = (l: CheckpointLagSeen | undefined): string =>
  l
    ? `    checkpointer lag: at most ${l.maxEntries} entries waiting, the oldest ${l.maxOldestSeconds} s (${l.samples} samples); after the catch-up ${l.atEnd.entries} entries, ${l.atEnd.oldestSeconds} s`
    : '    checkpointer lag: not read';
