/**
 * The load generator, run as a child process of bench/run.ts (so that it does
 * not share an event loop with the gateway). Protocol over IPC:
 *   parent → { url, dataDir, jwks, concurrency, durationMs, count[, format, openpgpKey] }  (argv[2] as JSON)
 *   child seals `count` envelopes, then → { ready: true }
 *   parent → 'go'; child posts for durationMs (or until the envelopes run out), then → { result }
 * Each envelope is posted once: no retries, no repeats.
 */
import { Agent, request } from 'node:http';
import type { JWK } from 'jose';
import type { OperationDirectory } from '../broker/agency-client/end-to-end.js';
import { sealE2eEnvelopesInWorkers } from './e2e-notices.js';
import { sealEnvelopes } from './notices.js';
import { sealOpenPgpEnvelopes } from './openpgp-notices.js';
import { clusters, medianGap, percentile, round } from './stats.js';

/** Open loop: requests slower than this (the p99 target) are located in time, to show whether they come in bursts. */
const SLOW_MS = 25;

export interface LoadgenArgs {
  url: string;
  /** Several gateways: the requests go to these in turn (round-robin), `url` only names the first for its /metrics. */
  urls?: string[];
  dataDir: string;
  jwks: { keys: JWK[] };
  concurrency: number;
  durationMs: number;
  count: number;
  /** Open loop: start requests at this fixed rate (at most `concurrency` in flight); latency counts from the scheduled start. */
  ratePerSecond?: number;
  /**
   * Envelope format: JOSE (default), OpenPGP messages encrypted to `openpgpKey` (the broker's armored key from GET
   * /v1/keys), or end-to-end envelopes sealed for the recipients' keys in `e2eDirectory` (bench/e2e-notices.ts).
   */
  format?: 'jose' | 'openpgp' | 'e2e';
  openpgpKey?: string;
  e2eDirectory?: OperationDirectory;
}

export interface LevelResult {
  concurrency: number;
  ratePerSecond?: number;
  sent: number;
  accepted: number;
  /** Seconds the load generator spent sealing its envelopes before the clock started (the client's cost, untimed). */
  sealSeconds: number;
  errors: number;
  errorStatuses: Record<string, number>;
  seconds: number;
  acceptedPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanBytes: number;
  ranOut: boolean;
  loadgenCpuPercent: number;
  /**
   * Open loop only: the requests slower than 25 ms, grouped by when they were due (requests due within
   * 200 ms of each other form one burst; the period is the median gap between bursts of 5 or more).
   * Bursts at a steady period point at the machine, not the load.
   */
  slow?: {
    requests: number;
    bursts: { atSeconds: number; requests: number; worstMs: number }[];
    medianBurstGapSeconds: number | null;
  };
}

function post(agent: Agent, url: URL, body: string, contentType: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: '/v1/notices',
        method: 'POST',
        headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
        timeout: 30_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(-1));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

async function seal(args: LoadgenArgs) {
  if (args.format === 'openpgp') return sealOpenPgpEnvelopes(args.count, args.dataDir, args.openpgpKey ?? '');
  if (args.format === 'e2e') {
    if (!args.e2eDirectory) throw new Error('format e2e needs e2eDirectory');
    return sealE2eEnvelopesInWorkers(args.count, args.dataDir, args.e2eDirectory);
  }
  return sealEnvelopes(args.count, args.dataDir, args.jwks);
}

async function run(args: LoadgenArgs): Promise<LevelResult> {
  const s0 = performance.now();
  const envelopes = await seal(args);
  const sealSeconds = round((performance.now() - s0) / 1000, 2);
  const urls = (args.urls?.length ? args.urls : [args.url]).map((u) => new URL(u));
  let turn = 0;
  const nextUrl = () => urls[turn++ % urls.length]!;
  const agent = new Agent({ keepAlive: true, maxSockets: args.concurrency });
  await new Promise<void>((resolve) => {
    process.send!({ ready: true });
    process.once('message', () => resolve());
  });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  let accepted = 0;
  // Open loop: when each slow request was due (ms after the start) → its latency.
  const slowDue = new Map<number, number>();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + args.durationMs;
  const worker = async () => {
    while (performance.now() < deadline && next < envelopes.length) {
      const env = envelopes[next++]!;
      const s = performance.now();
      const status = await post(agent, nextUrl(), env.body, env.mediaType);
      record(status, performance.now() - s);
    }
  };
  const record = (status: number, ms: number) => {
    latencies.push(ms);
    if (status === 202) accepted++;
    else statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
  };
  if (args.ratePerSecond) {
    // Open loop: request k is due at t0 + k/rate; a late start still counts from when it was due.
    const interval = 1000 / args.ratePerSecond;
    let inFlight = 0;
    const pending = new Set<Promise<void>>();
    while (performance.now() < deadline && next < envelopes.length) {
      const due = t0 + next * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      if (inFlight >= args.concurrency) {
        await Promise.race(pending);
        continue;
      }
      const env = envelopes[next++]!;
      inFlight++;
      const p: Promise<void> = post(agent, nextUrl(), env.body, env.mediaType).then((status) => {
        const ms = performance.now() - due;
        record(status, ms);
        if (ms > SLOW_MS) slowDue.set(due - t0, ms);
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    await Promise.all(pending);
  } else {
    await Promise.all(Array.from({ length: args.concurrency }, worker));
  }
  const seconds = (performance.now() - t0) / 1000;
  const bursts = clusters(
    [...slowDue.keys()].sort((a, b) => a - b),
    200,
  );
  // A stray slow request is not a burst: the period counts bursts of 5 or more.
  const burstGapMs = medianGap(bursts.filter((b) => b.length >= 5));
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const sent = latencies.length;
  return {
    concurrency: args.concurrency,
    ...(args.ratePerSecond ? { ratePerSecond: args.ratePerSecond } : {}),
    sent,
    accepted,
    sealSeconds,
    errors: sent - accepted,
    errorStatuses: statuses,
    seconds: round(seconds, 3),
    acceptedPerSecond: round(accepted / seconds),
    p50Ms: round(percentile(latencies, 50), 2),
    p95Ms: round(percentile(latencies, 95), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    meanBytes: Math.round(envelopes.slice(0, sent).reduce((a, e) => a + e.bytes, 0) / Math.max(1, sent)),
    ranOut: next >= envelopes.length && performance.now() < deadline,
    loadgenCpuPercent: round((100 * (cpu.user + cpu.system)) / 1e6 / seconds),
    ...(args.ratePerSecond
      ? {
          slow: {
            requests: slowDue.size,
            bursts: bursts.map((b) => ({
              atSeconds: round(b[0]! / 1000, 2),
              requests: b.length,
              worstMs: round(Math.max(...b.map((d) => slowDue.get(d)!)), 1),
            })),
            medianBurstGapSeconds: burstGapMs === null ? null : round(burstGapMs / 1000, 2),
          },
        }
      : {}),
  };
}

const args = JSON.parse(process.argv[2] ?? '{}') as LoadgenArgs;
run(args).then(
  (result) => process.send!({ result }, () => process.exit(0)),
  (e: unknown) => {
    process.stderr.write(`loadgen: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
