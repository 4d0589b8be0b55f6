/**
 * Several gateways on one nats-server, every one routing a share of the
 * notices from the one shared router consumer (issue 24): the bench's
 * `--gateways N` level. The load goes to the gateways in turn (one load
 * generator, round-robin per request), and each router's share is read from
 * its own /metrics (liaison_router_notices_routed_total) before and after.
 */
import type { ChildProcess } from 'node:child_process';
import type { JWK } from 'jose';
import { freePort } from '../broker/nats/local-server.js';
import { benchGatewayEnv, METRICS_TOKEN, routerWatch, runLevel, startGateway, type Level } from './levels.js';
import { stopChild } from './processes.js';
import { round } from './stats.js';

/** The routed counter of one gateway's /metrics (the ops listener needs no token; the bench's API port does). */
export async function routedTotal(url: string, token: string = METRICS_TOKEN): Promise<number> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`${url}/metrics: ${res.status}`);
  const m = /^liaison_router_notices_routed_total (\S+)$/m.exec(await res.text());
  if (!m) throw new Error(`${url}/metrics has no liaison_router_notices_routed_total`);
  return Number(m[1]);
}

export interface RouterShares {
  gateways: number;
  /** Notices each router routed during the level and its catch-up, in gateway order. */
  routed: number[];
  /** Each router's fraction of the notices routed. */
  shares: number[];
  /** (largest share - smallest) / largest: the issue's target is at most 0.2. */
  spread: number;
  level: Level;
  /** Sustained rate with these gateways over the one-gateway rate it was run against. */
  overOneGateway: number;
}

/** Pure: each router's fraction and the spread between the largest and the smallest. */
export function sharesOf(routed: readonly number[]): { shares: number[]; spread: number } {
  const total = routed.reduce((a, b) => a + b, 0);
  const shares = routed.map((n) => round(total > 0 ? n / total : 0, 3));
  const most = Math.max(...routed);
  return { shares, spread: round(most > 0 ? (most - Math.min(...routed)) / most : 0, 3) };
}

export interface SharesLevelOptions {
  gateways: number;
  /** The gateway already running (it stays running); the others are started here and stopped at the end. */
  first: { child: ChildProcess; url: string };
  natsUrl: string;
  natsPid: number;
  dataDir: string;
  nodeArgs: readonly string[];
  jwks: { keys: JWK[] };
  concurrency: number;
  durationMs: number;
  count: number;
  routed: ReturnType<typeof routerWatch>;
  /** The sustained rate of one gateway at this concurrency, measured earlier in the run. */
  oneGatewayPerSecond: number;
}

/** Start gateways 2..N (same data dir: the same broker), run one level spread over all of them, read each router's share. */
export async function measureRouterShares(o: SharesLevelOptions): Promise<RouterShares> {
  const started: { child: ChildProcess; url: string }[] = [];
  try {
    for (let i = 1; i < o.gateways; i++) {
      const env = benchGatewayEnv({ port: await freePort(), natsUrl: o.natsUrl, dataDir: o.dataDir });
      started.push(await startGateway(env, { nodeArgs: o.nodeArgs }));
    }
    const all = [o.first, ...started];
    const before = await Promise.all(all.map((g) => routedTotal(g.url)));
    const level = await o.routed.settle(
      await runLevel(
        {
          url: o.first.url,
          urls: all.map((g) => g.url),
          dataDir: o.dataDir,
          jwks: o.jwks,
          concurrency: o.concurrency,
          durationMs: o.durationMs,
          count: o.count,
        },
        o.first.child.pid!,
        o.natsPid,
      ),
      o.first.child.pid!,
    );
    const after = await Promise.all(all.map((g) => routedTotal(g.url)));
    const routed = after.map((n, i) => n - before[i]!);
    return {
      gateways: all.length,
      routed,
      ...sharesOf(routed),
      level,
      overOneGateway: round(level.sustainedPerSecond! / o.oneGatewayPerSecond, 3),
    };
  } finally {
    for (const g of started) await stopChild(g.child);
  }
}

/** The lines the bench prints for a shares level. */
export function sharesLines(r: RouterShares): string[] {
  return [
    `  ${r.gateways} gateways, c=${r.level.concurrency}: ${r.level.sustainedPerSecond}/s sustained (accepted ${r.level.acceptedPerSecond}/s, err ${r.level.errors}), ${r.overOneGateway} × one gateway`,
    `  routers' shares: ${r.routed.map((n, i) => `gateway ${i + 1} ${n} (${round(100 * r.shares[i]!, 1)} %)`).join(', ')}; spread ${round(100 * r.spread, 1)} % (target ≤ 20 %)`,
  ];
}
