import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Pure: split ascending values into runs whose neighbours are at most `joinGap` apart. */
export function clusters(sorted: readonly number[], joinGap: number): number[][] {
  const out: number[][] = [];
  for (const v of sorted) {
    const last = out.at(-1);
    if (last && v - last.at(-1)! <= joinGap) last.push(v);
    else out.push([v]);
  }
  return out;
}

/** The median of the gaps between the first values of consecutive runs, or null with fewer than two runs. */
export function medianGap(runs: readonly (readonly number[])[]): number | null {
  const gaps = runs
    .slice(1)
    .map((r, i) => r[0]! - runs[i]![0]!)
    .sort((a, b) => a - b);
  return gaps.length > 0 ? gaps[gaps.length >> 1]! : null;
}

export const round = (v: number, digits = 1) => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : v);

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number, tid?: number): number {
  // /proc/<pid>/task/<tid>/stat is one thread's own (the main thread's tid is the pid).
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** Resident set size in MB, from /proc/<pid>/status. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Samples a process's CPU use and peak RSS between start() and stop(). */
export function processMeter(pid: number) {
  let cpu0 = 0;
  let main0 = 0;
  let t0 = 0;
  let peak = 0;
  let timer: NodeJS.Timeout | undefined;
  const sample = () => {
    try {
      peak = Math.max(peak, rssMb(pid));
    } catch {
      /* process gone */
    }
  };
  return {
    start() {
      cpu0 = cpuSeconds(pid);
      main0 = cpuSeconds(pid, pid);
      t0 = performance.now();
      peak = 0;
      sample();
      timer = setInterval(sample, 100);
    },
    /** cpuPercent: the whole process (100 = one core); mainThreadCpuPercent: its main thread alone (a Node process's event loop). */
    stop(): { cpuPercent: number; mainThreadCpuPercent: number; peakRssMb: number } {
      if (timer) clearInterval(timer);
      sample();
      const secs = (performance.now() - t0) / 1000;
      return {
        cpuPercent: round((100 * (cpuSeconds(pid) - cpu0)) / secs),
        mainThreadCpuPercent: round((100 * (cpuSeconds(pid, pid) - main0)) / secs),
        peakRssMb: round(peak),
      };
    },
  };
}
