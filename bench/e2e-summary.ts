/**
 * Pure parts of the bench's end-to-end path (issue 23): how many envelopes a level seals, and the three figures the
 * issue asks for against their targets.
 */
import type { ThreadRole } from '../broker/metrics/thread-cpu.js';
import { round } from './stats.js';

/** The targets: 2,500 notices/s sustained, at least 0.7 of the bare pass-through, p99 at most 25 ms at half peak. */
export const E2E_TARGETS = { peakPerSecond: 2500, overPassThrough: 0.7, p99AtHalfPeakMs: 25 } as const;
/** The most envelopes per second a level seals for: above the target, so a level that runs out says the target is met. */
export const E2E_RATE_CAP = 4000;
/**
 * The fewest: the JOSE level an estimate starts from can be a slow one (on a busy machine, JOSE at c=1 took 24.7/s
 * and e2e 155.9/s, which ran out of its 144 envelopes in a second), and sealing 500 a second more costs a few seconds.
 */
export const E2E_RATE_FLOOR = 500;

/** The figures of a level this module reads. */
export interface E2eLevel {
  concurrency: number;
  accepted: number;
  seconds: number;
  acceptedPerSecond: number;
  sustainedPerSecond?: number;
  p99Ms: number;
  errors: number;
  natsCpuPercent: number;
  threadCpuMsPerNotice?: Record<ThreadRole, number>;
}

/**
 * The rate to seal envelopes for at concurrency `c` (sealing is slow: ~250/s a thread): the previous e2e level's rate,
 * or for the first level three times the JOSE level's (no decryption and no re-encryption at the hub) at the highest
 * concurrency up to `c` (else the lowest), scaled up by the concurrency; between E2E_RATE_FLOOR and E2E_RATE_CAP. A level
 * that runs out of envelopes still measures its rate, over a shorter clock, and says so (`ranOut`).
 */
export function e2eRateEstimate(c: number, previous: E2eLevel | undefined, jose: readonly E2eLevel[]): number {
  const byC = [...jose].sort((x, y) => x.concurrency - y.concurrency);
  const ref = previous ?? byC.filter((l) => l.concurrency <= c).at(-1) ?? byC[0];
  const guess = ref ? (previous ? 1 : 3) * ref.acceptedPerSecond * Math.max(1, c / ref.concurrency) : E2E_RATE_CAP;
  return Math.max(E2E_RATE_FLOOR, Math.min(E2E_RATE_CAP, Math.ceil(guess)));
}

/** nats-server's CPU per accepted notice (ms) over a level's clock. */
export const natsMsPerNotice = (l: E2eLevel) => round((10 * l.natsCpuPercent * l.seconds) / Math.max(1, l.accepted), 3);

/** The three figures from the e2e levels and the bare pass-through peak of the same run, each against its target. */
export function e2eSummary(full: readonly E2eLevel[], half: E2eLevel, passThroughPeakPerSecond: number) {
  if (full.length === 0) throw new Error('no e2e level');
  const peak = full.reduce((a, b) => ((b.sustainedPerSecond ?? 0) > (a.sustainedPerSecond ?? 0) ? b : a));
  const peakPerSecond = peak.sustainedPerSecond ?? peak.acceptedPerSecond;
  const ratios = {
    /** Sustained: accepted over the level and the router's catch-up, as the JOSE levels report it. */
    fullPeakPerSecond: peakPerSecond,
    fullPeakAcceptedPerSecond: peak.acceptedPerSecond,
    fullPeakConcurrency: peak.concurrency,
    passThroughPeakPerSecond: passThroughPeakPerSecond,
    fullOverPassThrough: round(peakPerSecond / passThroughPeakPerSecond, 3),
    p99AtHalfPeakMs: half.p99Ms,
    /** At the peak level: the gateway's CPU per notice by thread (ms), and nats-server's CPU (% of a core). */
    peakThreadCpuMsPerNotice: peak.threadCpuMsPerNotice ?? null,
    peakNatsCpuPercent: peak.natsCpuPercent,
    peakNatsCpuMsPerNotice: natsMsPerNotice(peak),
    halfPeakThreadCpuMsPerNotice: half.threadCpuMsPerNotice ?? null,
    halfPeakNatsCpuPercent: half.natsCpuPercent,
    halfPeakNatsCpuMsPerNotice: natsMsPerNotice(half),
    errors: full.reduce((a, l) => a + l.errors, 0) + half.errors,
  };
  const targets = {
    fullPeakPerSecond: {
      target: `>= ${E2E_TARGETS.peakPerSecond}`,
      met: ratios.fullPeakPerSecond >= E2E_TARGETS.peakPerSecond,
    },
    fullOverPassThrough: {
      target: `>= ${E2E_TARGETS.overPassThrough}`,
      met: ratios.fullOverPassThrough >= E2E_TARGETS.overPassThrough,
    },
    p99AtHalfPeakMs: {
      target: `<= ${E2E_TARGETS.p99AtHalfPeakMs}`,
      met: ratios.p99AtHalfPeakMs <= E2E_TARGETS.p99AtHalfPeakMs,
    },
  };
  return { peak, ratios, targets };
}

/** One line per target, as the summary prints them. */
export function e2eSummaryLines(
  s: Pick<ReturnType<typeof e2eSummary>, 'ratios' | 'targets'>,
  halfRate: number,
): string[] {
  const { ratios: r, targets: t } = s;
  const met = (m: boolean) => (m ? 'met' : 'NOT met');
  const cpu = r.peakThreadCpuMsPerNotice;
  return [
    `e2e peak                  ${r.fullPeakPerSecond}/s sustained at c=${r.fullPeakConcurrency} (accepted ${r.fullPeakAcceptedPerSecond}/s)  (target ≥ ${E2E_TARGETS.peakPerSecond}/s: ${met(t.fullPeakPerSecond.met)})`,
    `e2e / bare pass-through   ${r.fullOverPassThrough} (pass-through ${r.passThroughPeakPerSecond}/s, same run)  (target ≥ ${E2E_TARGETS.overPassThrough}: ${met(t.fullOverPassThrough.met)})`,
    `e2e p99 at half peak (${halfRate}/s)  ${r.p99AtHalfPeakMs} ms  (target ≤ ${E2E_TARGETS.p99AtHalfPeakMs} ms: ${met(t.p99AtHalfPeakMs.met)})`,
    cpu
      ? `e2e CPU per notice at peak  gateway main ${cpu.main}, background ${cpu.background}, sealing ${cpu.sealing}, other ${cpu.other} ms; nats-server ${r.peakNatsCpuMsPerNotice} ms (${r.peakNatsCpuPercent}% of a core)`
      : `e2e CPU per notice at peak  (no per-thread CPU); nats-server ${r.peakNatsCpuMsPerNotice} ms (${r.peakNatsCpuPercent}% of a core)`,
    `e2e errors                ${r.errors}`,
  ];
}
