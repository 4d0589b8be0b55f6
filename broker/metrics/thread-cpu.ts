/**
 * CPU time per thread of the gateway process, by role: the HTTP event loop
 * (`main`), the background thread (router, checkpointer), the sealing worker
 * (delivery encryption), and everything else (`other`: V8's GC and compiler
 * helpers, libuv's pool, where WebCrypto runs). Linux only: read from
 * /proc/self/task/<tid>/schedstat (nanoseconds on the CPU); elsewhere there are
 * no readings and the counters stay at 0.
 *
 * Which thread saturates says what to do: a busy event loop is ingest's limit,
 * a busy background thread is the router falling behind (it runs at a lower
 * priority on purpose), a busy sealing worker is the fan-out's encryption.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const THREAD_ROLES = ['main', 'background', 'sealing', 'other'] as const;
export type ThreadRole = (typeof THREAD_ROLES)[number];

/** The thread ids of the roles that have their own thread now (the main thread's is the process id). */
export interface RoleThreadIds {
  background?: number | undefined;
  sealing?: number | undefined;
}

/** The calling thread's Linux task id (/proc/thread-self), or undefined where there is none. */
export function currentThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Seconds on the CPU of every live thread of this process, by task id; empty where /proc is not Linux's. */
export function readThreadCpu(taskDir = '/proc/self/task'): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(taskDir);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      // schedstat: time on the CPU (ns), time waiting for it (ns), timeslices.
      const ns = Number(readFileSync(`${taskDir}/${t}/schedstat`, 'utf8').split(' ')[0]);
      if (Number.isFinite(ns) && ns >= 0) out.set(Number(t), ns / 1e9);
    } catch {
      // The thread ended between the listing and the read: its time is no longer this scan's to count.
    }
  }
  return out;
}

/**
 * Pure: turns successive scans (cumulative seconds per thread) into the
 * seconds each role ran since the previous scan. Each thread counts from 0
 * when first seen, so a restarted background thread (a new id) adds to its
 * role as the old one did; a thread that is gone is forgotten (what it ran
 * since the previous scan is lost, nothing more), and an id the kernel hands
 * out again starts from 0 as the new thread it is. Never negative.
 */
export class ThreadCpuAccount {
  readonly #last = new Map<number, number>();

  constructor(private readonly mainThreadId: number) {}

  /** Add one scan; returns the seconds each role ran since the previous one (since its threads started, the first time). */
  observe(scan: ReadonlyMap<number, number>, roles: RoleThreadIds): Record<ThreadRole, number> {
    const roleOf = (tid: number): ThreadRole =>
      tid === this.mainThreadId
        ? 'main'
        : tid === roles.background
          ? 'background'
          : tid === roles.sealing
            ? 'sealing'
            : 'other';
    const added: Record<ThreadRole, number> = { main: 0, background: 0, sealing: 0, other: 0 };
    for (const tid of this.#last.keys()) if (!scan.has(tid)) this.#last.delete(tid);
    for (const [tid, seconds] of scan) {
      const last = this.#last.get(tid) ?? 0;
      if (seconds > last) {
        added[roleOf(tid)] += seconds - last;
        this.#last.set(tid, seconds);
      } else this.#last.set(tid, last);
    }
    return added;
  }
}
