/**
 * Compare gateways side by side, level after level in turn, so that a slow
 * patch of the machine falls on all of them alike: on a shared 2-core VM the
 * CPU a notice costs drifted by a fifth between minutes, which sank any
 * comparison of two bench runs made one after the other.
 *
 *   node dist/bench/ab.js [--rounds 5] [--concurrency 64 | --rate 350] [--seconds 4] [--env NAME:KEY=VALUE]... [--node-args NAME:ARGS]... [--seed-before-e2e NAME]... [--openpgp] NAME=DIST ...
 *
 * Each NAME=DIST is a gateway built in DIST (its `broker/main.js`; another
 * commit's build: `git worktree add /tmp/base <commit>`, then `npm ci && npm run
 * build` there and pass `base=/tmp/base/dist`), with its own nats-server and the
 * demo network; `--env` adds environment for one of them, `--node-args` replaces
 * the node flags it starts with (default: this build's GATEWAY_NODE_ARGS, as
 * `npm start`; space-separated, empty for none); `--seed-before-e2e` gives one
 * a copy of the demo seed without its end-to-end operation (a build from before
 * issue 23 refuses the seed otherwise); `--openpgp` posts OpenPGP
 * messages (as the bench's OpenPGP levels) instead of JOSE envelopes. Every round runs one
 * level per gateway (order alternating between rounds): closed loop at
 * `--concurrency`, or open loop at `--rate` notices per second (the same work
 * for every gateway: CPU per notice then says what each costs at that load,
 * without a saturated machine's swings), waits for
 * its router to catch up, and records notices accepted and sustained per second
 * and CPU milliseconds per notice of the gateway and of its nats-server over
 * level and catch-up, and the gateway's own by thread (main, background,
 * sealing, other: its liaison_thread_cpu_seconds_total; NaN for a build
 * without that metric). The first round warms up and is not counted. Prints the
 * medians, and each against the first gateway's; writes bench/results/ab.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { createLogger } from '../broker/core/logger.js';
import { repoRoot } from '../broker/core/paths.js';
import { ensureDemoNetwork } from '../broker/demo/demo-network.js';
import { connectNats, type NatsBus } from '../broker/nats/connection.js';
import {
  findNatsServer,
  freePort,
  NATS_INSTALL_HINT,
  startLocalNats,
  type LocalNats,
} from '../broker/nats/local-server.js';
import { benchGatewayEnv, routerWatch, runLevel, startGateway, type Level } from './levels.js';
import { children, out, sleep, stopChild } from './processes.js';
import { cpuSeconds, round } from './stats.js';

const { values, positionals } = parseArgs({
  options: {
    rounds: { type: 'string' },
    concurrency: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    env: { type: 'string', multiple: true },
    'node-args': { type: 'string', multiple: true },
    openpgp: { type: 'boolean' },
    'seed-before-e2e': { type: 'string', multiple: true },
  },
  allowPositionals: true,
});
const rounds = Number(values.rounds ?? 5);
const concurrency = Number(values.concurrency ?? 64);
const durationMs = Math.round(Number(values.seconds ?? 4) * 1000);
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 50)) throw new Error('--rounds: 1 to 50');
if (!(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 512))
  throw new Error('--concurrency: 1 to 512');
const rate = values.rate === undefined ? undefined : Number(values.rate);
if (rate !== undefined && !(Number.isInteger(rate) && rate >= 1 && rate <= 20_000))
  throw new Error('--rate: 1 to 20000 per second');
if (!(durationMs >= 500 && durationMs <= 60_000)) throw new Error('--seconds: 0.5 to 60');

interface Variant {
  name: string;
  dist: string;
  env: Record<string, string>;
  nodeArgs?: string[];
}
const variants: Variant[] = positionals.map((p) => {
  const m = /^([\w.-]+)=(.+)$/.exec(p);
  if (!m) throw new Error(`expected NAME=DIST, got ${p}`);
  return { name: m[1]!, dist: resolve(m[2]!), env: {} };
});
if (variants.length < 2 || new Set(variants.map((v) => v.name)).size !== variants.length)
  throw new Error('name two or more gateways, NAME=DIST each, names distinct');
for (const e of values.env ?? []) {
  const m = /^([\w.-]+):([A-Z_][A-Z0-9_]*)=(.*)$/.exec(e);
  const v = m && variants.find((x) => x.name === m[1]);
  if (!m || !v) throw new Error(`--env NAME:KEY=VALUE, NAME one of the gateways: ${e}`);
  v.env[m[2]!] = m[3]!;
}
for (const a of values['node-args'] ?? []) {
  const m = /^([\w.-]+):(.*)$/.exec(a);
  const v = m && variants.find((x) => x.name === m[1]);
  if (!m || !v) throw new Error(`--node-args NAME:ARGS, NAME one of the gateways: ${a}`);
  v.nodeArgs = m[2]!.split(/\s+/).filter(Boolean);
}

interface Row {
  acceptedPerSecond: number;
  sustainedPerSecond: number;
  gatewayCpuMsPerNotice: number;
  natsCpuMsPerNotice: number;
  peakRssMb: number;
  p99Ms: number;
  /** The gateway's CPU per notice by thread (its liaison_thread_cpu_seconds_total; NaN for a build without it). */
  mainMs: number;
  backgroundMs: number;
  sealingMs: number;
  otherMs: number;
}
const KEYS = [
  'acceptedPerSecond',
  'sustainedPerSecond',
  'gatewayCpuMsPerNotice',
  'natsCpuMsPerNotice',
  'peakRssMb',
  'p99Ms',
  'mainMs',
  'backgroundMs',
  'sealingMs',
  'otherMs',
] as const;
/**
 * The demo seed as a build from before end-to-end operations (issue 23) reads it: the same agencies and keys, without
 * the operations marked `end_to_end` (its registry schema refuses the member). For an A/B against such a commit.
 */
function writeSeedBeforeE2e(seedFile: string, to: string): string {
  const seed = JSON.parse(readFileSync(seedFile, 'utf8')) as { operations: { end_to_end?: boolean }[] };
  seed.operations = seed.operations.filter((o) => o.end_to_end !== true);
  writeFileSync(to, JSON.stringify(seed, null, 2), { mode: 0o600 });
  return to;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main() {
  const bin = findNatsServer(process.env.NATS_SERVER_BIN ?? null);
  if (!bin) throw new Error(NATS_INSTALL_HINT);
  const work = mkdtempSync(join(tmpdir(), 'liaison-ab-'));
  const started: {
    v: Variant;
    nats: LocalNats;
    pid: number;
    url: string;
    jwks: { keys: JWK[]; openpgp?: string };
    bus: NatsBus;
    rows: Row[];
  }[] = [];
  try {
    const dataDir = join(work, 'data');
    const { seedFile } = await ensureDemoNetwork(dataDir);
    for (const name of values['seed-before-e2e'] ?? []) {
      const v = variants.find((x) => x.name === name);
      if (!v) throw new Error(`--seed-before-e2e NAME, NAME one of the gateways: ${name}`);
      v.env.LIAISON_REGISTRY_SEED = writeSeedBeforeE2e(seedFile, join(work, `registry-${name}.json`));
    }
    for (const v of variants) {
      const nats = await startLocalNats({ bin, storeDir: join(work, `nats-${v.name}`) });
      const gw = await startGateway(
        { ...benchGatewayEnv({ port: await freePort(), natsUrl: nats.url, dataDir }), ...v.env },
        { mainJs: join(v.dist, 'broker', 'main.js'), nodeArgs: v.nodeArgs },
      );
      const url = gw.url;
      const jwks = (await (await fetch(`${url}/v1/keys`)).json()) as { keys: JWK[]; openpgp?: string };
      const bus = await connectNats({
        servers: nats.url,
        name: 'bench-ab',
        publishTimeoutMs: 10_000,
        logger: createLogger('silent'),
      });
      started.push({ v, nats, pid: gw.child.pid!, url, jwks, bus, rows: [] });
    }
    out(
      `A/B: ${variants.map((v) => `${v.name} (${v.dist}${Object.keys(v.env).length ? ` ${JSON.stringify(v.env)}` : ''}${v.nodeArgs ? ` node ${v.nodeArgs.join(' ')}` : ''})`).join(', ')}; ${values.openpgp ? 'OpenPGP, ' : ''}${rate === undefined ? `c=${concurrency}` : `open loop at ${rate}/s`}, ${durationMs} ms levels, ${rounds} rounds after a warm-up`,
    );
    for (let round_ = 0; round_ <= rounds; round_++) {
      const order = round_ % 2 === 0 ? started : [...started].reverse();
      for (const s of order) {
        const gw0 = cpuSeconds(s.pid);
        const nats0 = cpuSeconds(s.nats.pid);
        // Closed loop: envelopes for 2 500 a second (OpenPGP: 1 000, which openpgp.js seals at ~500/s), more than any gateway
        // here took (all are sealed before the clock starts).
        const format = values.openpgp ? { format: 'openpgp' as const, openpgpKey: s.jwks.openpgp } : {};
        const level: Level = await runLevel(
          rate === undefined
            ? {
                ...format,
                url: s.url,
                dataDir,
                jwks: s.jwks,
                concurrency,
                durationMs,
                count: Math.min(40_000, Math.ceil((values.openpgp ? 1 : 2.5) * durationMs) + 50),
              }
            : {
                ...format,
                url: s.url,
                dataDir,
                jwks: s.jwks,
                concurrency: 256,
                durationMs,
                ratePerSecond: rate,
                count: Math.ceil((rate * durationMs) / 1000) + 50,
              },
          s.pid,
          s.nats.pid,
        );
        const settled = s.v.env.LIAISON_ROUTER === '0' ? level : await routerWatch(s.bus).settle(level, s.pid, s.url);
        const threads = settled.threadCpuMsPerNotice;
        const row: Row = {
          acceptedPerSecond: settled.acceptedPerSecond,
          sustainedPerSecond: settled.sustainedPerSecond ?? settled.acceptedPerSecond,
          // Level and catch-up: everything the gateway and its nats-server spent on these notices (the load generator's sealing comes before).
          gatewayCpuMsPerNotice: round((1000 * (cpuSeconds(s.pid) - gw0)) / settled.accepted, 3),
          natsCpuMsPerNotice: round((1000 * (cpuSeconds(s.nats.pid) - nats0)) / settled.accepted, 3),
          peakRssMb: settled.gatewayPeakRssMb,
          p99Ms: settled.p99Ms,
          mainMs: threads?.main ?? NaN,
          backgroundMs: threads?.background ?? NaN,
          sealingMs: threads?.sealing ?? NaN,
          otherMs: threads?.other ?? NaN,
        };
        if (round_ > 0) s.rows.push(row);
        out(
          `  ${round_ === 0 ? 'warm-up' : `round ${round_}`}  ${s.v.name.padEnd(12)} ${KEYS.map((k) => `${k} ${row[k]}`).join('  ')}`,
        );
        await sleep(300);
      }
    }
    const base = started[0]!;
    const medians = Object.fromEntries(
      started.map((s) => [
        s.v.name,
        Object.fromEntries(KEYS.map((k) => [k, median(s.rows.map((r) => r[k]))])) as Record<
          (typeof KEYS)[number],
          number
        >,
      ]),
    );
    out('medians (and against the first):');
    for (const s of started) {
      const m = medians[s.v.name]!;
      out(
        `  ${s.v.name.padEnd(12)} ${KEYS.map((k) => `${k} ${m[k]}${s === base ? '' : ` (${round(m[k] / medians[base.v.name]![k], 3)})`}`).join('  ')}  max RSS ${Math.max(...s.rows.map((r) => r.peakRssMb))} MB`,
      );
    }
    const resultsDir = join(repoRoot, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(
      join(resultsDir, 'ab.json'),
      JSON.stringify(
        {
          at: new Date().toISOString(),
          concurrency,
          rate,
          durationMs,
          rounds,
          variants,
          medians,
          rows: Object.fromEntries(started.map((s) => [s.v.name, s.rows])),
        },
        null,
        2,
      ) + '\n',
    );
    out('results: bench/results/ab.json');
  } finally {
    for (const s of started) await s.bus.close().catch(() => undefined);
    for (const c of [...children]) await stopChild(c);
    for (const s of started) await s.nats.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
