/**
 * `npm run bench`: the full pipeline over HTTP + NATS at rising concurrency,
 * against two references measured in the same run (the crypto ceiling in
 * process, and a bare Fastify + JetStream pass-through), plus the audit verify
 * rate beside the raw Ed25519 verify rate. The OpenPGP envelope path
 * (application/pgp-encrypted) is measured beside JOSE on the same gateway: its
 * own crypto ceiling (the gateway's OpenPGP adapter in process) and its full
 * pipeline rate. End-to-end envelopes (application/liaison-e2e+json, five
 * recipients each, in an operation the bench registers through the admin API)
 * run after them on the same gateway, against the bare pass-through of the
 * same run (issue 23's targets: bench/e2e-summary.ts).
 *
 *   node dist/bench/run.js [--quick] [--levels 1,4,16,64] [--openpgp-levels 1,4,16|none] [--e2e-levels 1,4,16,64|none] [--seconds 5] [--gateways 3]
 *
 * `--gateways N` adds a level at the peak concurrency spread over N gateways
 * on the one nats-server, with each router's share (bench/router-shares.ts).
 *
 * Everything runs on loopback: its own nats-server, the gateway as a child
 * process (node dist/broker/main.js), the load generator as another child.
 * Each level is bounded in time and in envelopes; every child is stopped by
 * its PID at the end, also on failure.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { createOpenPgpEnvelope } from '../adapters/openpgp/index.js';
import { GATEWAY_NODE_ARGS } from '../broker/core/heap-limits.js';
import { createLogger } from '../broker/core/logger.js';
import { repoRoot } from '../broker/core/paths.js';
import { ensureDemoNetwork } from '../broker/demo/demo-network.js';
import { loadOrCreateBrokerKeys } from '../broker/keys/broker-keys.js';
import { createOpenPgpSignerResolver } from '../adapters/openpgp/signers.js';
import { connectNats } from '../broker/nats/connection.js';
import {
  findNatsServer,
  freePort,
  NATS_INSTALL_HINT,
  startLocalNats,
  type LocalNats,
} from '../broker/nats/local-server.js';
import { RegistrySnapshot, type RegistrySeed } from '../broker/registry/model.js';
import { measureAuditVerify, rawEd25519VerifyRate, type AuditRate } from './audit-rate.js';
import { createDeliverySealers } from '../broker/routing/seal.js';
import { measureCeiling, type CeilingResult } from './ceiling.js';
import { fmtSlowAttribution, readSlowCounters, slowAttribution } from './slow-attribution.js';
import { fmtCheckpointLag, watchCheckpointLag, type CheckpointLagSeen } from './checkpoint-lag-watch.js';
import { benchGatewayEnv, routerWatch, runLevel, startGateway, startNode, type Level } from './levels.js';
import { E2E_OPERATION, E2E_RECIPIENTS, registerE2eOperation } from './e2e-notices.js';
import { e2eRateEstimate, e2eSummary, e2eSummaryLines } from './e2e-summary.js';
import { sealEnvelopes } from './notices.js';
import { OPENPGP_MIX, sealOpenPgpEnvelopes } from './openpgp-notices.js';
import { round } from './stats.js';
import { describeSteadiness, measureSteadiness } from './steadiness.js';
import { benchChartSvg } from './svg.js';
import { measureRouterShares, sharesLines, type RouterShares } from './router-shares.js';
import { children, out, sleep, stopChild } from './processes.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    profile: { type: 'string' },
    levels: { type: 'string' },
    'openpgp-levels': { type: 'string' },
    'e2e-levels': { type: 'string' },
    seconds: { type: 'string' },
    'no-chart': { type: 'boolean' },
    gateways: { type: 'string' },
  },
  allowPositionals: false,
});
const quick = values.quick ?? false;
const parseLevels = (v: string) =>
  v
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0 && n <= 512);
const levels = parseLevels(values.levels ?? '1,4,16,64');
// The OpenPGP path: the same levels in a full run, fewer with --quick; `none` skips it.
const openpgpLevels =
  values['openpgp-levels'] === 'none'
    ? []
    : values['openpgp-levels']
      ? parseLevels(values['openpgp-levels'])
      : quick
        ? [1, 4, 16]
        : levels;
// The end-to-end path: the same levels as JOSE unless told; `none` skips it.
const e2eLevels =
  values['e2e-levels'] === 'none' ? [] : values['e2e-levels'] ? parseLevels(values['e2e-levels']) : levels;
const durationMs = Math.round(Number(values.seconds ?? (quick ? 1 : 5)) * 1000);
if (!(durationMs >= 200 && durationMs <= 60_000)) throw new Error('--seconds must be between 0.2 and 60');
const MAX_ENVELOPES_PER_LEVEL = 40_000;
const gatewayCount = Number(values.gateways ?? 1);
if (!(Number.isInteger(gatewayCount) && gatewayCount >= 1 && gatewayCount <= 8))
  throw new Error('--gateways must be 1 to 8');

const fmt = (l: Level) =>
  `${String(l.ratePerSecond ? `@${l.ratePerSecond}/s` : `c=${l.concurrency}`).padEnd(10)} ${String(l.acceptedPerSecond).padStart(8)}/s  p50 ${String(l.p50Ms).padStart(7)} ms  p95 ${String(l.p95Ms).padStart(7)} ms  p99 ${String(l.p99Ms).padStart(7)} ms  err ${String(l.errors).padStart(4)}  cpu ${String(l.gatewayCpuPercent).padStart(5)}% (main ${String(l.gatewayMainThreadCpuPercent).padStart(5)}%)  rss ${String(l.gatewayPeakRssMb).padStart(6)} MB  nats ${String(l.natsCpuPercent).padStart(5)}%  loadgen ${String(l.loadgenCpuPercent).padStart(5)}%${l.routerBacklogAtEnd !== undefined ? `  router backlog ${l.routerBacklogAtEnd} (${l.routerDrainSeconds} s; sustained ${l.sustainedPerSecond}/s)` : ''}${l.ranOut ? '  (ran out of envelopes)' : ''}`;

/** The gateway's CPU per notice by thread (its /metrics), level and catch-up. */
const fmtThreads = (l: Level) => {
  const t = l.threadCpuMsPerNotice;
  if (!t)
    return '      (no per-thread CPU: its /metrics had no liaison_thread_cpu_seconds_total, or could not be read)';
  const sum = round(t.main + t.background + t.sealing + t.other, 3);
  return `      gateway CPU per notice ${sum} ms: main ${t.main}, background ${t.background}, sealing ${t.sealing}, other ${t.other} (GC helpers, libuv pool)`;
};
/** Open-loop levels: where in time the requests over 25 ms were. */
const fmtSlow = (l: Level) =>
  l.slow
    ? `    ${l.slow.requests} requests over 25 ms, in ${l.slow.bursts.length} bursts${l.slow.bursts.length ? ` (at ${l.slow.bursts.map((b) => `${b.atSeconds} s: ${b.requests}, worst ${b.worstMs} ms`).join('; ')})` : ''}${l.slow.medianBurstGapSeconds !== null ? `, one every ${l.slow.medianBurstGapSeconds} s (median gap between bursts of 5 or more)` : ''}`
    : '';

async function main() {
  const bin = findNatsServer(process.env.NATS_SERVER_BIN ?? null);
  if (!bin) throw new Error(NATS_INSTALL_HINT);
  const work = mkdtempSync(join(tmpdir(), 'liaison-bench-'));
  let nats: LocalNats | undefined;
  try {
    const dataDir = join(work, 'data');
    await ensureDemoNetwork(dataDir);
    nats = await startLocalNats({ bin, storeDir: join(work, 'nats') });
    const machine = {
      nproc: cpus().length,
      cpuModel: /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown',
      node: process.version,
      natsServer: bin,
      uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
      /** 1-minute load average before the run: other work on the machine skews every figure. */
      loadAverageAtStart: round(loadavg()[0] ?? NaN, 2),
    };
    // The machine's own CPU steadiness, before anything of ours runs: a host that slows its VM now and then shows in every p99.
    const steadyBefore = await measureSteadiness(quick ? 3 : 6);
    out(
      `Liaison bench: ${machine.nproc} cores (${machine.cpuModel}), node ${machine.node}, load average ${machine.loadAverageAtStart}; levels ${levels.join(', ')}, ${durationMs} ms each${quick ? ' (--quick)' : ''}`,
    );

    out('  ' + describeSteadiness(steadyBefore));

    // --- the gateway, as in production: node dist/broker/main.js
    const port = await freePort();
    const env = benchGatewayEnv({ port, natsUrl: nats.url, dataDir });
    // --profile DIR: the gateway writes a V8 CPU profile there on exit (summarise with dist/bench/profile-top.js).
    const nodeArgs = [
      ...GATEWAY_NODE_ARGS,
      ...(values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []),
    ];
    const gw = await startGateway(env, { nodeArgs });
    const gwUrl = gw.url;
    const jwks = (await (await fetch(`${gwUrl}/v1/keys`)).json()) as { keys: JWK[] };

    // --- reference 1: the crypto ceiling, in this process while the gateway idles
    const { keyring } = await loadOrCreateBrokerKeys(dataDir, 'liaison-hub');
    const registry = RegistrySnapshot.fromSeed(
      JSON.parse(readFileSync(join(dataDir, 'registry.json'), 'utf8')) as RegistrySeed,
    );
    const ceilingEnvelopes = await sealEnvelopes(quick ? 150 : 600, dataDir, jwks);
    const ceilings: CeilingResult[] = [];
    for (const c of [1, 16]) {
      ceilings.push(await measureCeiling(ceilingEnvelopes, keyring, registry, c, durationMs));
      out(`crypto ceiling  c=${c}: ${ceilings.at(-1)!.perSecond}/s (cpu ${ceilings.at(-1)!.cpuPercent}%)`);
    }
    const ceiling = Math.max(...ceilings.map((c) => c.perSecond));
    // The same with each notice sealed to its recipients on the router's sealing worker: the crypto of the whole
    // pipeline, fan-out included, which the ceiling above (the issue's: decrypt, verify, validate, receipt) leaves out.
    const sealers = createDeliverySealers({});
    const fanOutCeilings: CeilingResult[] = [];
    try {
      for (const c of [16, 64]) {
        fanOutCeilings.push(
          await measureCeiling(ceilingEnvelopes, keyring, registry, c, durationMs, undefined, sealers),
        );
        out(
          `crypto ceiling with fan-out  c=${c}: ${fanOutCeilings.at(-1)!.perSecond}/s (cpu ${fanOutCeilings.at(-1)!.cpuPercent}%)`,
        );
      }
    } finally {
      await Promise.all([...sealers.values()].map(async (s) => s.close?.()));
    }
    const fanOutCeiling = Math.max(...fanOutCeilings.map((c) => c.perSecond));
    const budget = (rate: number) =>
      Math.min(MAX_ENVELOPES_PER_LEVEL, Math.ceil(((rate * durationMs) / 1000) * 1.25) + 50);

    // --- the OpenPGP crypto ceiling: the gateway's own OpenPGP adapter (dearmor, packet scan, decrypt with the
    // broker's OpenPGP key, verify against the registered certificate), then the same steps 4-6 and 8 as JOSE.
    const brokerPgp = (jwks as { openpgp?: string }).openpgp;
    const openpgpCeilings: CeilingResult[] = [];
    let openpgpCeiling = NaN;
    if (openpgpLevels.length > 0) {
      if (!brokerPgp || !keyring.openpgp)
        throw new Error('the gateway publishes no OpenPGP key (GET /v1/keys openpgp)');
      const pgpAdapter = createOpenPgpEnvelope({
        decryptionKeys: keyring.openpgp.decryptionKeys,
        resolveSigner: createOpenPgpSignerResolver(() => registry),
      });
      const s0 = performance.now();
      const pgpEnvelopes = await sealOpenPgpEnvelopes(quick ? 120 : 480, dataDir, brokerPgp);
      out(
        `OpenPGP: sealed ${pgpEnvelopes.length} messages with openpgp.js in ${round((performance.now() - s0) / 1000, 2)} s (client cost, before timing)`,
      );
      for (const c of [1, 16]) {
        openpgpCeilings.push(await measureCeiling(pgpEnvelopes, keyring, registry, c, durationMs, pgpAdapter));
        out(
          `OpenPGP crypto ceiling  c=${c}: ${openpgpCeilings.at(-1)!.perSecond}/s (cpu ${openpgpCeilings.at(-1)!.cpuPercent}%)`,
        );
      }
      openpgpCeiling = Math.max(...openpgpCeilings.map((c) => c.perSecond));
    }

    // --- the full pipeline at rising concurrency
    out('full pipeline (HTTP → open → validate → policy → JetStream ×2 → receipt):');
    const full: Level[] = [];
    // Each level starts with the router caught up: a backlog left by one level would load the next.
    // The bench's own NATS connection: the router's backlog between levels, then the audit's export.
    const bus = await connectNats({
      servers: nats.url,
      name: 'bench',
      publishTimeoutMs: 10_000,
      logger: createLogger('silent'),
    });
    const routed = routerWatch(bus);
    const checkpointLags = new Map<Level, CheckpointLagSeen>();
    for (const c of levels) {
      const lag = watchCheckpointLag(bus);
      const level = await runLevel(
        { url: gwUrl, dataDir, jwks, concurrency: c, durationMs, count: budget(ceiling) },
        gw.child.pid!,
        nats.pid,
      );
      full.push(await routed.settle(level, gw.child.pid!, gwUrl));
      checkpointLags.set(full.at(-1)!, await lag.stop());
      out('  ' + fmt(full.at(-1)!));
      out(fmtThreads(full.at(-1)!));
      out(fmtCheckpointLag(checkpointLags.get(full.at(-1)!)));
      await sleep(300);
    }
    // The peak is the rate the whole pipeline sustained (deliveries included), not what ingest took while routing lagged.
    const peak = full.reduce((a, b) => (b.sustainedPerSecond! > a.sustainedPerSecond! ? b : a));
    const halfRate = Math.max(1, Math.round(peak.sustainedPerSecond! / 2));
    // Three level lengths: in 5 s (~1 000 requests) the p99 is the 11th slowest request, and one 60 ms hiccup decides it.
    const openLoopMs = 3 * durationMs;
    const slowBefore = await readSlowCounters(gwUrl);
    const half = await routed.settle(
      await runLevel(
        {
          url: gwUrl,
          dataDir,
          jwks,
          concurrency: 256,
          durationMs: openLoopMs,
          count: budget(3 * halfRate),
          ratePerSecond: halfRate,
        },
        gw.child.pid!,
        nats.pid,
      ),
      gw.child.pid!,
      gwUrl,
    );
    out('  ' + fmt(half) + '   (open loop at half the peak rate)');
    out(fmtThreads(half));
    out(fmtSlow(half));
    const slowAfter = slowBefore && (await readSlowCounters(gwUrl));
    const halfSlowAttribution = slowAfter && slowAttribution(slowBefore, slowAfter);
    out(fmtSlowAttribution(halfSlowAttribution));

    // --- --gateways N: the peak level again, spread over N gateways, and each router's share of the routing.
    let routerShares: RouterShares | undefined;
    if (gatewayCount > 1) {
      out(`${gatewayCount} gateways on one nats-server (requests round-robin over them), c=${peak.concurrency}:`);
      routerShares = await measureRouterShares({
        gateways: gatewayCount,
        first: gw,
        natsUrl: nats.url,
        natsPid: nats.pid,
        dataDir,
        nodeArgs,
        jwks,
        concurrency: peak.concurrency,
        durationMs,
        count: budget(ceiling),
        routed,
        oneGatewayPerSecond: peak.sustainedPerSecond!,
      });
      for (const line of sharesLines(routerShares)) out(line);
    }

    // --- the OpenPGP full pipeline on the same gateway: armored messages signed by the demo agencies' OpenPGP keys
    // and encrypted to the broker's published OpenPGP key, sealed by the load generator before its clock starts.
    const openpgpFull: Level[] = [];
    if (openpgpLevels.length > 0) {
      out('OpenPGP full pipeline (HTTP → dearmor → decrypt → verify → validate → policy → JetStream ×2 → receipt):');
      for (const c of openpgpLevels) {
        const level = await runLevel(
          {
            url: gwUrl,
            dataDir,
            jwks,
            format: 'openpgp',
            openpgpKey: brokerPgp!,
            concurrency: c,
            durationMs,
            count: budget(openpgpCeiling),
          },
          gw.child.pid!,
          nats.pid,
        );
        openpgpFull.push(await routed.settle(level, gw.child.pid!, gwUrl));
        out('  ' + fmt(openpgpFull.at(-1)!));
        out(fmtThreads(openpgpFull.at(-1)!));
        await sleep(300);
      }
    }
    const openpgpPeak = openpgpFull.length
      ? openpgpFull.reduce((a, b) => (b.sustainedPerSecond! > a.sustainedPerSecond! ? b : a))
      : undefined;

    // --- the end-to-end path on the same gateway: envelopes sealed by their origins for 5 recipients each, which the
    // hub checks (header signature, routing header schema, body hash and shape, policy, recipients) but never opens.
    const e2eFull: Level[] = [];
    let e2eHalf: Level | undefined;
    if (e2eLevels.length > 0) {
      const directory = await registerE2eOperation(
        gwUrl,
        dataDir,
        (jwks as { broker?: string }).broker ?? 'liaison-hub',
      );
      out(
        `end-to-end full pipeline (HTTP → header JWS → routing header → body hash and shape → policy → JetStream ×2 → receipt; ${E2E_RECIPIENTS} recipients each, operation ${E2E_OPERATION.id}):`,
      );
      for (const c of e2eLevels) {
        const rate = e2eRateEstimate(c, e2eFull.at(-1), full);
        const level = await runLevel(
          {
            url: gwUrl,
            dataDir,
            jwks,
            format: 'e2e',
            e2eDirectory: directory,
            concurrency: c,
            durationMs,
            count: budget(rate),
          },
          gw.child.pid!,
          nats.pid,
        );
        e2eFull.push(await routed.settle(level, gw.child.pid!, gwUrl));
        out('  ' + fmt(e2eFull.at(-1)!) + `  (sealed ${budget(rate)} in ${level.sealSeconds} s, untimed)`);
        out(fmtThreads(e2eFull.at(-1)!));
        await sleep(300);
      }
      const e2ePeak = e2eFull.reduce((a, b) => (b.sustainedPerSecond! > a.sustainedPerSecond! ? b : a));
      const e2eHalfRate = Math.max(1, Math.round(e2ePeak.sustainedPerSecond! / 2));
      e2eHalf = await routed.settle(
        await runLevel(
          {
            url: gwUrl,
            dataDir,
            jwks,
            format: 'e2e',
            e2eDirectory: directory,
            concurrency: 256,
            durationMs: openLoopMs,
            count: budget(3 * e2eHalfRate),
            ratePerSecond: e2eHalfRate,
          },
          gw.child.pid!,
          nats.pid,
        ),
        gw.child.pid!,
        gwUrl,
      );
      out(
        '  ' + fmt(e2eHalf) + `   (open loop at half the e2e peak rate; sealed in ${e2eHalf.sealSeconds} s, untimed)`,
      );
      out(fmtThreads(e2eHalf));
      out(fmtSlow(e2eHalf));
    }

    // --- the audit verify rate over what this run logged
    await sleep(2500); // the checkpointer publishes every second while entries arrive
    let audit: AuditRate | undefined;
    try {
      audit = await measureAuditVerify(
        bus,
        'liaison-hub',
        jwks.keys.filter((k) => k.use === 'sig'),
        // Read now: the gateway made its storage key at start, after the keyring above was loaded.
        (await loadOrCreateBrokerKeys(dataDir, 'liaison-hub')).keyring,
      );
    } finally {
      await bus.close();
    }
    const rawVerify = rawEd25519VerifyRate(quick ? 300 : 1000);
    out(
      `audit verify: ${audit.entriesPerSecond} entries/s over ${audit.entries} entries, ${audit.notices} notices, ${audit.checkpoints} checkpoints (ok=${audit.ok}); raw Ed25519 verify ${rawVerify.perSecond}/s`,
    );
    out(
      `audit verify with origin signatures (as liaison audit verify runs): ${audit.withOrigins.entriesPerSecond} entries/s, ${audit.withOrigins.signaturesChecked} signatures (ok=${audit.withOrigins.ok})`,
    );
    await stopChild(gw.child);

    // --- the same pipeline on a gateway that only ingests (router and checkpointer run elsewhere)
    const ingestOnlyEnv = {
      ...env,
      LIAISON_ROUTER: '0',
      LIAISON_CHECKPOINTER: '0',
      LIAISON_PORT: String(await freePort()),
    };
    const gi = await startGateway(ingestOnlyEnv);
    const giUrl = gi.url;
    out('full pipeline, ingest-only gateway (LIAISON_ROUTER=0, LIAISON_CHECKPOINTER=0):');
    const ingestOnly: Level[] = [];
    for (const c of levels) {
      ingestOnly.push(
        await runLevel(
          { url: giUrl, dataDir, jwks, concurrency: c, durationMs, count: budget(ceiling) },
          gi.child.pid!,
          nats.pid,
        ),
      );
      out('  ' + fmt(ingestOnly.at(-1)!));
      out(fmtThreads(ingestOnly.at(-1)!));
      await sleep(300);
    }
    // The same open-loop rate as the full gateway's half-peak level: how much of its tail is the fan-out on the process.
    const ingestHalf = await runLevel(
      {
        url: giUrl,
        dataDir,
        jwks,
        concurrency: 256,
        durationMs: openLoopMs,
        count: budget(3 * halfRate),
        ratePerSecond: halfRate,
      },
      gi.child.pid!,
      nats.pid,
    );
    out('  ' + fmt(ingestHalf) + `   (open loop at ${halfRate}/s, the full gateway's half-peak rate)`);
    out(fmtThreads(ingestHalf));
    out(fmtSlow(ingestHalf));
    await stopChild(gi.child);
    const ingestPeak = ingestOnly.reduce((a, b) => (b.acceptedPerSecond > a.acceptedPerSecond ? b : a));

    // --- reference 2: bare pass-through (Fastify + two JetStream publishes, no crypto)
    const pt = await startNode(
      join(here, 'passthrough.js'),
      [nats.url, String(await freePort())],
      process.env,
      /listening (http:\/\/\S+)/,
    );
    out('bare pass-through (Fastify + JetStream ×2, no crypto):');
    const pass: Level[] = [];
    for (const c of levels) {
      pass.push(
        await runLevel(
          { url: pt.match[1]!, dataDir, jwks, concurrency: c, durationMs, count: budget(Math.max(2 * ceiling, 1500)) },
          pt.child.pid!,
          nats.pid,
        ),
      );
      out('  ' + fmt(pass.at(-1)!));
      await sleep(300);
    }
    await stopChild(pt.child);
    const steadyAfter = await measureSteadiness(quick ? 3 : 6);
    out(describeSteadiness(steadyAfter) + '   (after the run)');
    const passPeak = pass.reduce((a, b) => (b.acceptedPerSecond > a.acceptedPerSecond ? b : a));

    const ratios = {
      /** Sustained: accepted over the level and the router's catch-up (Level.sustainedPerSecond). */
      fullPeakPerSecond: peak.sustainedPerSecond!,
      /** What ingest accepted per second during that level's clock alone. */
      fullPeakAcceptedPerSecond: peak.acceptedPerSecond,
      fullPeakConcurrency: peak.concurrency,
      cryptoCeilingPerSecond: ceiling,
      passThroughPeakPerSecond: passPeak.acceptedPerSecond,
      fullOverCeiling: round(peak.sustainedPerSecond! / ceiling, 3),
      fullOverPassThrough: round(peak.sustainedPerSecond! / passPeak.acceptedPerSecond, 3),
      /** The ceiling with each notice's fan-out sealed too (the router's sealing worker), and the full pipeline against it. */
      cryptoCeilingWithFanOutPerSecond: fanOutCeiling,
      fullOverCeilingWithFanOut: round(peak.sustainedPerSecond! / fanOutCeiling, 3),
      ingestOnlyPeakPerSecond: ingestPeak.acceptedPerSecond,
      ingestOnlyOverCeiling: round(ingestPeak.acceptedPerSecond / ceiling, 3),
      p99AtHalfPeakMs: half.p99Ms,
      halfPeakRate: halfRate,
      /** Log entries waiting for a signed checkpoint during the peak level (most seen, and after its catch-up). */
      checkpointLagAtPeak: checkpointLags.get(peak),
      /** For the half-peak posts over 25 ms: how much of their time was GC, event-loop stalls, NATS waits. */
      slowAtHalfPeak: halfSlowAttribution,
      /** The ingest-only gateway at the same open-loop rate: the tail without the router and checkpointer on the process. */
      ingestOnlyP99AtHalfPeakMs: ingestHalf.p99Ms,
      // Under load of any kind: the OpenPGP and e2e levels run on the same gateway after the JOSE ones.
      maxGatewayRssMb: Math.max(
        ...full.map((l) => l.gatewayPeakRssMb),
        half.gatewayPeakRssMb,
        ...openpgpFull.map((l) => l.gatewayPeakRssMb),
        ...e2eFull.map((l) => l.gatewayPeakRssMb),
        e2eHalf?.gatewayPeakRssMb ?? 0,
      ),
      auditOverRawVerify: round(audit.entriesPerSecond / rawVerify.perSecond, 3),
      /** The audit an auditor runs (origin signatures too) against raw verify. */
      auditWithOriginsOverRawVerify: round(audit.withOrigins.entriesPerSecond / rawVerify.perSecond, 3),
      errors: full.reduce((a, l) => a + l.errors, 0) + half.errors,
    };
    const openpgp = openpgpPeak
      ? {
          levels: openpgpLevels,
          mix: OPENPGP_MIX.map((m) => `${m.type} from ${m.from}`),
          ceiling: openpgpCeilings,
          full: openpgpFull,
          ratios: {
            fullPeakPerSecond: openpgpPeak.sustainedPerSecond!,
            fullPeakAcceptedPerSecond: openpgpPeak.acceptedPerSecond,
            fullPeakConcurrency: openpgpPeak.concurrency,
            cryptoCeilingPerSecond: openpgpCeiling,
            fullOverCeiling: round(openpgpPeak.sustainedPerSecond! / openpgpCeiling, 3),
            /** OpenPGP against JOSE, same run: how much slower the OpenPGP path is, at the ceiling and end to end. */
            ceilingOverJoseCeiling: round(openpgpCeiling / ceiling, 3),
            fullPeakOverJoseFullPeak: round(openpgpPeak.sustainedPerSecond! / peak.sustainedPerSecond!, 3),
            maxGatewayRssMb: Math.max(...openpgpFull.map((l) => l.gatewayPeakRssMb)),
            errors: openpgpFull.reduce((a, l) => a + l.errors, 0),
          },
        }
      : undefined;
    // Issue 23's three figures, against the bare pass-through peak of this run.
    const e2eFigures = e2eHalf && e2eSummary(e2eFull, e2eHalf, passPeak.acceptedPerSecond);
    const e2e =
      e2eHalf && e2eFigures
        ? {
            levels: e2eLevels,
            operation: E2E_OPERATION.id,
            recipientsPerNotice: E2E_RECIPIENTS,
            full: e2eFull,
            halfPeak: e2eHalf,
            ratios: { ...e2eFigures.ratios, halfPeakRate: e2eHalf.ratePerSecond! },
            targets: e2eFigures.targets,
          }
        : undefined;
    const targets = {
      fullOverCeiling: { target: '>= 0.6', met: ratios.fullOverCeiling >= 0.6 },
      p99AtHalfPeakMs: { target: '<= 25', met: ratios.p99AtHalfPeakMs <= 25 },
      maxGatewayRssMb: { target: '<= 256', met: ratios.maxGatewayRssMb <= 256 },
      auditOverRawVerify: { target: '>= 0.5', met: ratios.auditOverRawVerify >= 0.5 },
    };
    out('');
    out(
      `full pipeline peak        ${ratios.fullPeakPerSecond}/s sustained at c=${ratios.fullPeakConcurrency} (accepted ${ratios.fullPeakAcceptedPerSecond}/s while the clock ran, then the router caught up)`,
    );
    out(
      `crypto ceiling            ${ceiling}/s        full / ceiling      = ${ratios.fullOverCeiling}  (target ≥ 0.6: ${targets.fullOverCeiling.met ? 'met' : 'NOT met'})`,
    );
    out(
      `crypto ceiling, fan-out   ${fanOutCeiling}/s        full / that         = ${ratios.fullOverCeilingWithFanOut}  (the crypto the full pipeline does per notice, deliveries included)`,
    );
    out(
      `ingest-only gateway peak  ${ratios.ingestOnlyPeakPerSecond}/s        ingest-only / ceiling = ${ratios.ingestOnlyOverCeiling}`,
    );
    out(
      `bare pass-through peak    ${ratios.passThroughPeakPerSecond}/s        full / pass-through = ${ratios.fullOverPassThrough}`,
    );
    out(fmtCheckpointLag(ratios.checkpointLagAtPeak).replace('    checkpointer lag:', 'checkpointer lag at peak  '));
    out(
      `p99 at half peak (${halfRate}/s)  ${ratios.p99AtHalfPeakMs} ms  (target ≤ 25 ms: ${targets.p99AtHalfPeakMs.met ? 'met' : 'NOT met'}); ingest-only gateway at the same rate ${ratios.ingestOnlyP99AtHalfPeakMs} ms`,
    );
    out(
      `gateway peak RSS          ${ratios.maxGatewayRssMb} MB  (target ≤ 256 MB: ${targets.maxGatewayRssMb.met ? 'met' : 'NOT met'}; JOSE, OpenPGP and e2e levels, catch-ups included)`,
    );
    out(
      `audit verify / raw verify ${ratios.auditOverRawVerify}  (target ≥ 0.5: ${targets.auditOverRawVerify.met ? 'met' : 'NOT met'}); with origin signatures ${ratios.auditWithOriginsOverRawVerify}`,
    );
    out(`errors                    ${ratios.errors}`);
    if (openpgp) {
      const r = openpgp.ratios;
      const W = 58;
      const at = (l: Level | undefined) =>
        l ? `${l.acceptedPerSecond}/s, p50 ${l.p50Ms} / p95 ${l.p95Ms} / p99 ${l.p99Ms} ms` : '—';
      out('');
      out(`                          ${'JOSE'.padEnd(W)} OpenPGP`);
      out(`crypto ceiling            ${`${ceiling}/s`.padEnd(W)} ${r.cryptoCeilingPerSecond}/s`);
      out(
        `full pipeline peak        ${`${at(peak)} (c=${peak.concurrency})`.padEnd(W)} ${at(openpgpPeak)} (c=${r.fullPeakConcurrency})`,
      );
      for (const c of openpgpLevels)
        out(
          `  c=${String(c).padEnd(21)} ${at(full.find((l) => l.concurrency === c)).padEnd(W)} ${at(openpgpFull.find((l) => l.concurrency === c))}`,
        );
      out(`full / ceiling            ${String(ratios.fullOverCeiling).padEnd(W)} ${r.fullOverCeiling}`);
      out(
        `OpenPGP / JOSE            ceiling ${r.ceilingOverJoseCeiling}, full pipeline peak ${r.fullPeakOverJoseFullPeak}`,
      );
      out(`OpenPGP errors            ${r.errors}`);
    }
    if (e2e) {
      out('');
      for (const line of e2eSummaryLines(e2e, e2e.ratios.halfPeakRate)) out(line);
    }

    if (machine.loadAverageAtStart > 0.5 * machine.nproc)
      out(
        `note: the machine was busy (load average ${machine.loadAverageAtStart} on ${machine.nproc} cores at start, ${round(loadavg()[0] ?? NaN, 2)} at the end): figures are lower bounds`,
      );
    // A probe that lost work with nothing of ours running: the host slowed this VM, and the latency percentiles carry it.
    const lost = Math.max(steadyBefore.lostFraction, steadyAfter.lostFraction);
    if (lost > 0.02)
      out(
        `note: the CPU was not steady (the steadiness probe lost ${round(lost * 100, 1)} % of its work in slow episodes): latency percentiles include the host's slowdowns (docs/benchmarks.md)`,
      );
    const results = {
      when: new Date().toISOString(),
      loadAverageAtEnd: round(loadavg()[0] ?? NaN, 2),
      command: `npm run bench${quick ? ' -- --quick' : ''}`,
      machine: { ...machine, steadiness: { before: steadyBefore, after: steadyAfter } },
      durationMs,
      levels,
      ceiling: ceilings,
      ceilingWithFanOut: fanOutCeilings,
      full,
      halfPeak: half,
      ingestOnly,
      ingestOnlyHalfPeak: ingestHalf,
      passThrough: pass,
      audit,
      rawEd25519Verify: rawVerify,
      ratios,
      targets,
      ...(openpgp ? { openpgp } : {}),
      ...(e2e ? { e2e } : {}),
      ...(routerShares ? { routerShares } : {}),
    };
    const resultsDir = join(repoRoot, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const name = quick ? 'quick.json' : 'latest.json';
    writeFileSync(join(resultsDir, name), JSON.stringify(results, null, 2) + '\n');
    out(`\nresults: bench/results/${name}`);
    if (!quick && !values['no-chart']) {
      const svg = benchChartSvg(results);
      mkdirSync(join(repoRoot, 'docs', 'img'), { recursive: true });
      writeFileSync(join(repoRoot, 'docs', 'img', 'bench-throughput-latency.svg'), svg);
      out('chart:   docs/img/bench-throughput-latency.svg');
    }
  } finally {
    for (const c of [...children]) await stopChild(c);
    await nats?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
    process.exit(1);
  },
);
