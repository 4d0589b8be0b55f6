/**
 * Where a slow request's time went, located in time: this process's GC
 * pauses (perf_hooks 'gc' entries), event-loop stalls (a 10 ms timer that
 * fired late: the loop was busy or paused for that long) and the NATS
 * round trips of the ingest pipeline's store step (publish to NOTICES and
 * LOG, both acks awaited). Each kept a few seconds, as intervals on the
 * wall clock; overlap() says how many ms of a window each covered (the
 * union of its intervals, so concurrent waits count once).
 *
 * Counts time only, never what a request held.
 */

import { PerformanceObserver, performance } from 'node:perf_hooks';

export const PAUSE_KINDS = ['gc', 'event_loop', 'nats'] as const;
export type PauseKind = (typeof PAUSE_KINDS)[number];

/** How long intervals are kept: longer than any request the gateway answers. */
const KEEP_MS = 10_000;
const PROBE_MS = 10;
/** A tick later than this counts as a stall (timer jitter stays under it). */
const STALL_MS = 2;

type Interval = [start: number, end: number];

export class PauseRecorder {
  readonly #intervals: Record<PauseKind, Interval[]> = { gc: [], event_loop: [], nats: [] };
  readonly #gc: PerformanceObserver;
  readonly #probe: NodeJS.Timeout;

  constructor() {
    this.#gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const start = performance.timeOrigin + e.startTime;
        this.#add('gc', start, start + e.duration);
      }
    });
    this.#gc.observe({ entryTypes: ['gc'] });
    let due = Date.now() + PROBE_MS;
    this.#probe = setInterval(() => {
      const now = Date.now();
      if (now - due > STALL_MS) this.#add('event_loop', due, now);
      due = now + PROBE_MS;
    }, PROBE_MS);
    this.#probe.unref();
  }

  /** A NATS wait that just ended after `seconds`. */
  natsWait(seconds: number, end = Date.now()): void {
    this.#add('nats', end - seconds * 1000, end);
  }

  /** Record an interval (for the recorder's sources, and tests). */
  add(kind: PauseKind, start: number, end: number): void {
    this.#add(kind, start, end);
  }

  /** Milliseconds of [start, end] each kind covered. */
  overlap(start: number, end: number): Record<PauseKind, number> {
    const out = { gc: 0, event_loop: 0, nats: 0 };
    for (const kind of PAUSE_KINDS) out[kind] = unionWithin(this.#intervals[kind], start, end);
    return out;
  }

  close(): void {
    this.#gc.disconnect();
    clearInterval(this.#probe);
  }

  #add(kind: PauseKind, start: number, end: number): void {
    if (!(end > start)) return;
    const list = this.#intervals[kind];
    list.push([start, end]);
    // Ends arrive roughly in order: drop from the front what is past keeping.
    const cutoff = end - KEEP_MS;
    let drop = 0;
    while (drop < list.length && list[drop]![1] < cutoff) drop++;
    if (drop > 0) list.splice(0, drop);
  }
}

/** The length of the union of `intervals` clipped to [start, end]. */
export function unionWithin(intervals: readonly Interval[], start: number, end: number): number {
  const clipped: Interval[] = [];
  for (const [a, b] of intervals) {
    const s = Math.max(a, start);
    const e = Math.min(b, end);
    if (e > s) clipped.push([s, e]);
  }
  clipped.sort((x, y) => x[0] - y[0]);
  let total = 0;
  let curS = -Infinity;
  let curE = -Infinity;
  for (const [s, e] of clipped) {
    if (s > curE) {
      if (curE > curS) total += curE - curS;
      curS = s;
      curE = e;
    } else if (e > curE) curE = e;
  }
  if (curE > curS) total += curE - curS;
  return total;
}
