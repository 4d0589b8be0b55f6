/**
 * How steady is this machine's CPU? One busy thread per core runs a fixed
 * integer loop and counts how much of it gets done in each 20 ms bin. On a
 * steady machine every bin does about the median amount of work. A bin under
 * 0.8 of the median is "slow"; slow bins up to 200 ms apart form
 * one episode.
 *
 * Why the bench runs it: latency percentiles on a virtual machine measure the
 * host as much as the gateway. On the machine of docs/benchmarks.md, with
 * nothing else running, every core slowed to 10-50 % of its speed for
 * 100-300 ms about every 1.5 s, with no steal time shown in /proc/stat. A
 * request that meets such an episode waits tens of milliseconds whatever the
 * software does, and the results file should say so beside its p99.
 *
 *   node dist/bench/steadiness.js [seconds=8] [threads=cores]
 */
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { clusters, medianGap, round } from './stats.js';

const BIN_MS = 20;
const SLOW_RATIO = 0.8;
/** Slow bins at most this many bins apart (200 ms) belong to one episode: the slowdowns seen came as bursts of 40-140 ms a few bins apart. */
const JOIN_BINS = 10;

export interface SteadinessThread {
  medianPerBin: number;
  /** Work lost against running at the median all the time, 0..1. */
  lostFraction: number;
  /** Share of bins under 0.8 of the median. */
  slowBinFraction: number;
  episodes: { atSeconds: number; ms: number; lowestRatio: number }[];
}

export interface Steadiness {
  seconds: number;
  threads: number;
  binMs: number;
  /** The worst thread's loss (0..1). */
  lostFraction: number;
  slowBinFraction: number;
  /** Episodes of the first thread, and the median seconds between their starts. */
  episodes: SteadinessThread['episodes'];
  medianEpisodeGapSeconds: number | null;
  perThread: SteadinessThread[];
}

/** Pure: summarise one thread's per-bin work counts. */
export function summariseBins(bins: readonly number[], binMs = BIN_MS): SteadinessThread {
  const sorted = [...bins].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1] ?? 0;
  const ratio = (i: number) => (median > 0 ? bins[i]! / median : 1);
  const slow = bins.flatMap((_, i) => (ratio(i) < SLOW_RATIO ? [i] : []));
  const episodes = clusters(slow, JOIN_BINS).map((run) => ({
    atSeconds: round((run[0]! * binMs) / 1000, 2),
    ms: (run.at(-1)! - run[0]! + 1) * binMs,
    lowestRatio: round(Math.min(...run.map(ratio)), 2),
  }));
  const done = bins.reduce((a, n) => a + Math.min(n, median), 0);
  return {
    medianPerBin: median,
    lostFraction: median > 0 && bins.length > 0 ? round(1 - done / (median * bins.length), 3) : 0,
    slowBinFraction: bins.length > 0 ? round(slow.length / bins.length, 3) : 0,
    episodes,
  };
}

function spin(seconds: number): number[] {
  const bins: number[] = [];
  const t0 = performance.now();
  let x = 1;
  while (performance.now() - t0 < seconds * 1000) {
    const b0 = performance.now();
    let n = 0;
    while (performance.now() - b0 < BIN_MS) {
      for (let i = 0; i < 2000; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
      n++;
    }
    bins.push(n);
  }
  // Keep x alive so the loop is not optimised away.
  if (x === 0.5) bins.push(0);
  return bins;
}

/** Run one spinning worker per thread for `seconds`; the first second is dropped (start-up). */
export async function measureSteadiness(seconds = 8, threads = cpus().length): Promise<Steadiness> {
  const file = fileURLToPath(import.meta.url);
  const perThread = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<number[]>((resolve, reject) => {
          const w = new Worker(file, { workerData: { seconds: seconds + 1 } });
          w.once('message', (bins: number[]) => resolve(bins.slice(Math.round(1000 / BIN_MS))));
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`steadiness worker exited (${code}) without its bins`)));
        }),
    ),
  ).then((all) => all.map((bins) => summariseBins(bins)));
  const first = perThread[0]!;
  const gap = medianGap(first.episodes.map((e) => [e.atSeconds]));
  return {
    seconds,
    threads,
    binMs: BIN_MS,
    lostFraction: Math.max(...perThread.map((t) => t.lostFraction)),
    slowBinFraction: Math.max(...perThread.map((t) => t.slowBinFraction)),
    episodes: first.episodes,
    medianEpisodeGapSeconds: gap === null ? null : round(gap, 2),
    perThread,
  };
}

export const describeSteadiness = (s: Steadiness) =>
  `CPU steadiness (${s.threads} spinning threads, ${s.seconds} s): ${round(s.lostFraction * 100, 1)} % of the work lost, ${round(s.slowBinFraction * 100, 1)} % of 20 ms bins under 0.8 of the median; ` +
  `${s.episodes.length} slow episodes (${s.episodes.map((e) => `${e.ms} ms`).join(', ') || 'none'})${s.medianEpisodeGapSeconds !== null ? `, one every ${s.medianEpisodeGapSeconds} s` : ''}`;

if (!isMainThread && parentPort && (workerData as { seconds?: number } | null)?.seconds) {
  parentPort.postMessage(spin((workerData as { seconds: number }).seconds));
} else if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [secondsArg, threadsArg] = process.argv.slice(2);
  const s = await measureSteadiness(Number(secondsArg ?? 8), Number(threadsArg ?? cpus().length));
  process.stdout.write(describeSteadiness(s) + '\n');
  for (const e of s.episodes)
    process.stdout.write(`  at ${e.atSeconds} s: ${e.ms} ms, down to ${e.lowestRatio} of the median\n`);
}
