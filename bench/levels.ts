/**
 * One gateway level of the bench: the gateway and load generator processes,
 * a timed level while the gateway and nats-server are sampled, and the
 * router's catch-up after it. Shared by `npm run bench` (run.ts) and the A/B
 * comparison of two builds (ab.ts).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GATEWAY_NODE_ARGS } from '../broker/core/heap-limits.js';
import type { NatsBus } from '../broker/nats/connection.js';
import { STREAMS } from '../broker/nats/streams.js';
import { ROUTER_CONSUMER } from '../broker/routing/router.js';
import { THREAD_ROLES, type ThreadRole } from '../broker/metrics/thread-cpu.js';
import type { LevelResult, LoadgenArgs } from './loadgen.js';
import { children, sleep, stopChild } from './processes.js';
import { processMeter, round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Spawn a node child and wait for a line of stdout matching `ready`. */
export async function startNode(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  timeoutMs = 30_000,
  nodeArgs: string[] = [],
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 16_384) stderr += d.toString('utf8');
  });
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`${script} not ready after ${timeoutMs} ms: ${stderr.slice(-800)}`)),
      timeoutMs,
    );
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const m = ready.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}): ${stderr.slice(-800)}`));
    });
  });
  child.stdout.resume();
  return { child, match };
}

/**
 * A gateway's own `broker/main.js` (this build's by default), started as production starts it (`npm start`: with
 * GATEWAY_NODE_ARGS, unless `nodeArgs` replaces them); resolves with its URL once it listens.
 */
export async function startGateway(
  env: NodeJS.ProcessEnv,
  opts: { mainJs?: string; nodeArgs?: readonly string[] } = {},
): Promise<{ child: ChildProcess; url: string }> {
  const { child, match } = await startNode(
    opts.mainJs ?? join(here, '..', 'broker', 'main.js'),
    [],
    env,
    /listening on (http:\/\/\S+)/,
    30_000,
    [...(opts.nodeArgs ?? GATEWAY_NODE_ARGS)],
  );
  return { child, url: match[1]!.replace(/[()]/g, '') };
}

/**
 * The environment of a benchmarked gateway: loopback, the demo network, warnings only, a checkpoint a second, and no
 * per-client rate limit or per-address connection cap (one loopback client posts thousands of notices a minute over up
 * to 256 connections; the limits would answer 429s and close sockets, not measure the pipeline).
 */
export const benchGatewayEnv = (o: { port: number; natsUrl: string; dataDir: string }): NodeJS.ProcessEnv => ({
  ...process.env,
  // /metrics (the per-thread CPU columns) on the API port, with a token: the operations listener is off (below).
  LIAISON_METRICS_TOKEN_FILE: metricsTokenFile(o.dataDir),
  LIAISON_PORT: String(o.port),
  LIAISON_HOST: '127.0.0.1',
  NATS_URL: o.natsUrl,
  LIAISON_DATA_DIR: o.dataDir,
  LIAISON_DEMO: '1',
  LOG_LEVEL: 'warn',
  LIAISON_CHECKPOINT_INTERVAL_MS: '1000',
  LIAISON_RATE_LIMIT_MAX: '0',
  LIAISON_MAX_CONNECTIONS_PER_ADDRESS: '0',
  // No operations listener: its fixed port would clash between the gateways a run starts.
  LIAISON_OPS_PORT: '0',
});

export interface Level extends LevelResult {
  gatewayCpuPercent: number;
  /** The gateway's main thread (its event loop) alone: near 100 % it is the bottleneck. */
  gatewayMainThreadCpuPercent: number;
  gatewayPeakRssMb: number;
  natsCpuPercent: number;
  /** Full gateway only: notices not yet routed when the level's clock stopped, and how long the router took to finish them. */
  routerBacklogAtEnd?: number;
  routerDrainSeconds?: number;
  /**
   * Full gateway only: notices accepted per second over the level and the router's catch-up after it. The router runs
   * at a lower priority than ingest (backgroundNice): under overload it falls behind, and this is the rate the whole
   * pipeline, deliveries included, carried.
   */
  sustainedPerSecond?: number;
  /**
   * A gateway's CPU per accepted notice, in ms, by thread (its liaison_thread_cpu_seconds_total): main (HTTP, ingest),
   * background (router, checkpointer), sealing (delivery encryption), other (GC helpers, libuv pool with WebCrypto).
   * Over the level, and for the full gateway its catch-up too. Absent for a server without that metric.
   */
  threadCpuMsPerNotice?: Record<ThreadRole, number>;
  /** The reading it starts from (seconds per thread role), for settle(). */
  threadCpuAtStart?: Record<ThreadRole, number>;
}

/** One bearer token for every gateway this bench process starts (Prometheus-style bearer_token_file). */
export const METRICS_TOKEN = randomBytes(32).toString('base64url');

function metricsTokenFile(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = join(dataDir, 'metrics-token');
  writeFileSync(file, METRICS_TOKEN + '\n', { mode: 0o600 });
  return file;
}

/** A gateway's /metrics exposition text (with the bench's token). */
export async function scrapeMetricsText(url: string): Promise<string> {
  return (
    await fetch(`${url}/metrics`, {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    })
  ).text();
}

/** A gateway's CPU seconds by thread role, from its /metrics; undefined when it has no such metric (the pass-through) or /metrics could not be read. */
export async function scrapeThreadCpu(url: string): Promise<Record<ThreadRole, number> | undefined> {
  try {
    const text = await scrapeMetricsText(url);
    const out = {} as Record<ThreadRole, number>;
    for (const role of THREAD_ROLES) {
      const m = new RegExp(`^liaison_thread_cpu_seconds_total\\{thread="${role}"\\} (\\S+)$`, 'm').exec(text);
      if (!m) return undefined;
      out[role] = Number(m[1]);
    }
    return out;
  } catch {
    return undefined;
  }
}

/** Pure: ms of CPU per notice by thread role between two readings. */
export function threadCpuPerNotice(
  a: Record<ThreadRole, number>,
  b: Record<ThreadRole, number>,
  notices: number,
): Record<ThreadRole, number> {
  return Object.fromEntries(
    THREAD_ROLES.map((r) => [r, round((1000 * (b[r] - a[r])) / Math.max(1, notices), 3)]),
  ) as Record<ThreadRole, number>;
}

/** One level: fork the load generator, let it seal its envelopes, then time it while sampling the server and nats-server. */
export async function runLevel(args: LoadgenArgs, serverPid: number, natsPid: number): Promise<Level> {
  const child = fork(join(here, 'loadgen.js'), [JSON.stringify(args)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  try {
    const gw = processMeter(serverPid);
    const nats = processMeter(natsPid);
    let threadsAtStart: Record<ThreadRole, number> | undefined;
    const result = await new Promise<LevelResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('load generator timed out')), 120_000 + args.durationMs);
      const onMessage = async (m: { ready?: boolean; result?: LevelResult }) => {
        if (m.ready) {
          threadsAtStart = await scrapeThreadCpu(args.url);
          gw.start();
          nats.start();
          child.send('go');
        } else if (m.result) {
          clearTimeout(timer);
          resolve(m.result);
        }
      };
      child.on('message', (m: { ready?: boolean; result?: LevelResult }) => void onMessage(m));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`load generator exited with ${code}`));
      });
    });
    const g = gw.stop();
    const n = nats.stop();
    const threadsAtEnd = threadsAtStart && (await scrapeThreadCpu(args.url));
    return {
      ...result,
      gatewayCpuPercent: g.cpuPercent,
      gatewayMainThreadCpuPercent: g.mainThreadCpuPercent,
      gatewayPeakRssMb: g.peakRssMb,
      natsCpuPercent: n.cpuPercent,
      ...(threadsAtStart && threadsAtEnd
        ? {
            threadCpuAtStart: threadsAtStart,
            threadCpuMsPerNotice: threadCpuPerNotice(threadsAtStart, threadsAtEnd, result.accepted),
          }
        : {}),
    };
  } finally {
    await stopChild(child);
  }
}

/**
 * The router's backlog, read from its durable consumer on NOTICES (pending + taken but not acked).
 * drain(): the backlog now, then waits (at most 120 s) until it is zero and says how long that took.
 */
export function routerWatch(bus: NatsBus) {
  const backlog = async () => {
    const info = await bus.jsm.consumers.info(STREAMS.notices, ROUTER_CONSUMER);
    return info.num_pending + info.num_ack_pending;
  };
  return {
    async drain(): Promise<{ routerBacklogAtEnd: number; routerDrainSeconds: number }> {
      const t0 = performance.now();
      const atEnd = await backlog();
      let left = atEnd;
      while (left > 0 && performance.now() - t0 < 120_000) {
        await sleep(100);
        left = await backlog();
      }
      if (left > 0) throw new Error(`the router did not catch up within 120 s (${left} notices left)`);
      return { routerBacklogAtEnd: atEnd, routerDrainSeconds: round((performance.now() - t0) / 1000, 2) };
    },
    /** The level's result with the router's catch-up after it, and the rate sustained over both. */
    async settle(level: Level, gatewayPid: number, gatewayUrl?: string): Promise<Level> {
      // The gateway's memory is sampled through the catch-up too: routing at full speed is part of the load.
      const meter = processMeter(gatewayPid);
      meter.start();
      const d = await this.drain();
      const rss = meter.stop().peakRssMb;
      // The backlog is polled every 100 ms: a catch-up shorter than that counts as none.
      const catchUp = d.routerBacklogAtEnd > 0 && d.routerDrainSeconds > 0.1 ? d.routerDrainSeconds : 0;
      const threadsAtEnd = level.threadCpuAtStart && gatewayUrl ? await scrapeThreadCpu(gatewayUrl) : undefined;
      return {
        ...level,
        ...d,
        gatewayPeakRssMb: Math.max(level.gatewayPeakRssMb, rss),
        sustainedPerSecond: round(level.accepted / (level.seconds + catchUp)),
        ...(threadsAtEnd
          ? { threadCpuMsPerNotice: threadCpuPerNotice(level.threadCpuAtStart!, threadsAtEnd, level.accepted) }
          : {}),
      };
    },
  };
}
