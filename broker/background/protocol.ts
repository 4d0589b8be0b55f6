/** Messages between the gateway (thread.ts) and its background thread (worker.ts). Plain data only. */
import type { Config } from '../config/config.js';
import type { Finding } from '../core/integrity.js';
import type { CheckpointerStatus } from '../log/checkpointer.js';
import type { RoleThreadIds } from '../metrics/thread-cpu.js';

export interface BackgroundWorkerData {
  config: Config;
  /** The NATS URL the gateway connected to (config.natsUrl is null when main.ts started a local nats-server). */
  natsUrl: string;
  holder: string;
}

export interface BackgroundStatus {
  /** Whether the router holds its lease (false without a router). */
  routerLeading: boolean;
  /** Notices the router routed and acked since the thread started. */
  routed: number;
  checkpointer: CheckpointerStatus | null;
  /** Thread ids (Linux) of the background thread itself and of its sealing worker once started, for the per-thread CPU metric. */
  threads: RoleThreadIds;
}

/** What the router told its observer since the last message: routed (written, skipped), or failed (kind); and the integrity findings made on the thread (logged there already). */
export type ObserverEvent = ['routed', number, number] | ['failed', 'unroutable' | 'retry'] | ['finding', Finding];

export type FromWorker =
  | { type: 'ready'; status: BackgroundStatus }
  | { type: 'status'; status: BackgroundStatus; events: ObserverEvent[] }
  /** Log lines exactly as pino wrote them (newline-terminated), for the gateway's own log destination. */
  | { type: 'log'; lines: string[] }
  | { type: 'closed'; role: 'checkpointer' | 'all' }
  | { type: 'failed'; message: string };

export type ToWorker = { type: 'close'; role: 'checkpointer' | 'all' };
