/**
 * Delivery latency: from the 202 of a POST /v1/notices to the SSE event of
 * that notice at a subscriber.
 *
 *   npm run build && node dist/bench/latency.js [--rates 20,50] [--seconds 10] [--quick]
 *
 * Loopback only: its own nats-server (JetStream, temp store) and the gateway as
 * a child process (node dist/broker/main.js, demo network, router and
 * checkpointer on). th-customs follows GET /v1/inbox/stream (client assertion);
 * vn-customs posts pre-sealed seizure reports in mekong-dragon-6 addressed to
 * TH (th-customs is the only recipient) at a fixed open-loop rate, one POST
 * every 1/rate s whatever the answers. For each notice: t202 = when its 202
 * arrived, tSse = when its `delivery` event was parsed; latency = tSse - t202
 * (also reported from the POST being sent). Bounded: at most 60 s per rate,
 * 3000 notices per rate, 15 s to drain; every child is stopped by its PID.
 *
 * Writes bench/results/latency.json and prints a text summary.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { brokerEncryptionKey, sealNotice } from '../broker/agency-client/seal.js';
import { repoRoot } from '../broker/core/paths.js';
import { credentialsPath, ensureDemoNetwork, readCredentials } from '../broker/demo/demo-network.js';
import {
  findNatsServer,
  freePort,
  NATS_INSTALL_HINT,
  startLocalNats,
  type LocalNats,
} from '../broker/nats/local-server.js';
import { percentile, round } from './stats.js';
import { out, sleep, stopChild } from './processes.js';
import { startGateway } from './levels.js';

const { values } = parseArgs({
  options: { rates: { type: 'string' }, seconds: { type: 'string' }, quick: { type: 'boolean' } },
  allowPositionals: false,
});
const quick = values.quick ?? false;
const rates = (values.rates ?? '20,50').split(',').map((s) => Number(s.trim()));
if (rates.length === 0 || rates.some((r) => !Number.isInteger(r) || r < 1 || r > 500))
  throw new Error('--rates: integers between 1 and 500');
const seconds = Number(values.seconds ?? (quick ? 3 : 10));
if (!(seconds >= 1 && seconds <= 60)) throw new Error('--seconds must be between 1 and 60');
const MAX_PER_RATE = 3000;
const DRAIN_MS = 15_000;
const BROKER_ID = 'liaison-hub';
const FROM = 'vn-customs';
const TO = 'th-customs';

/** th-customs following its inbox over SSE: calls onDelivery(notice_id, now) for each delivery event. */
async function followSse(
  url: string,
  signingKey: JWK,
  onDelivery: (noticeId: string, at: number) => void,
  signal: AbortSignal,
): Promise<{ done: Promise<void> }> {
  const authorization = `Bearer ${await makeClientAssertion(TO, signingKey, BROKER_ID)}`;
  const res = await fetch(`${url}/v1/inbox/stream`, {
    headers: { authorization, accept: 'text/event-stream' },
    signal,
  });
  if (!res.ok || !res.body) throw new Error(`SSE refused: ${res.status} ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    let buf = '';
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) return;
        const at = performance.now();
        buf += decoder.decode(chunk.value as Uint8Array, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (event === 'delivery' && data) onDelivery((JSON.parse(data) as { notice_id: string }).notice_id, at);
        }
      }
    } catch (e) {
      if (!signal.aborted) throw e;
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  })();
  return { done };
}

interface RateResult {
  ratePerSecond: number;
  seconds: number;
  sent: number;
  accepted: number;
  delivered: number;
  lost: number;
  errors: number;
  /** POST sent -> 202. */
  post202: { p50Ms: number; p99Ms: number };
  /** 202 -> SSE event at th-customs (the headline figure). */
  fromAccept: { p50Ms: number; p99Ms: number; minMs: number; maxMs: number; beforeAccept: number };
  /** POST sent -> SSE event. */
  fromSend: { p50Ms: number; p99Ms: number };
  achievedRatePerSecond: number;
}

function summary(xs: number[]): { p50Ms: number; p99Ms: number; minMs: number; maxMs: number } {
  const s = [...xs].sort((a, b) => a - b);
  return {
    p50Ms: round(percentile(s, 50), 2),
    p99Ms: round(percentile(s, 99), 2),
    minMs: round(s[0] ?? NaN, 2),
    maxMs: round(s.at(-1) ?? NaN, 2),
  };
}

async function main() {
  const bin = findNatsServer(process.env.NATS_SERVER_BIN ?? null);
  if (!bin) throw new Error(NATS_INSTALL_HINT);
  const work = mkdtempSync(join(tmpdir(), 'liaison-latency-'));
  let nats: LocalNats | undefined;
  let gateway: ChildProcess | undefined;
  const abort = new AbortController();
  try {
    const dataDir = join(work, 'data');
    await ensureDemoNetwork(dataDir);
    nats = await startLocalNats({ bin, storeDir: join(work, 'nats') });
    const env = {
      ...process.env,
      LIAISON_PORT: String(await freePort()),
      LIAISON_HOST: '127.0.0.1',
      NATS_URL: nats.url,
      LIAISON_DATA_DIR: dataDir,
      LIAISON_DEMO: '1',
      LIAISON_BROKER_ID: BROKER_ID,
      LOG_LEVEL: 'warn',
      LIAISON_CHECKPOINT_INTERVAL_MS: '1000',
      LIAISON_OPS_PORT: '0',
    };
    const gw = await startGateway(env);
    gateway = gw.child;
    const machine = {
      nproc: cpus().length,
      cpuModel: /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown',
      node: process.version,
      natsServer: bin,
      loadAverageAtStart: round(loadavg()[0] ?? NaN, 2),
    };
    out(
      `Liaison delivery latency: ${machine.nproc} cores (${machine.cpuModel}), node ${machine.node}, load average ${machine.loadAverageAtStart}`,
    );
    out(
      `${FROM} → POST /v1/notices (mekong-dragon-6, addressed to TH) → router → SSE at ${TO}; rates ${rates.join(', ')}/s, ${seconds} s each`,
    );

    const jwks = (await (await fetch(`${gw.url}/v1/keys`)).json()) as { keys: JWK[] };
    const brokerKey = brokerEncryptionKey(jwks);
    const sender = readCredentials(credentialsPath(dataDir, FROM)).signing;
    const receiver = readCredentials(credentialsPath(dataDir, TO)).signing;
    const sample = JSON.parse(
      readFileSync(join(repoRoot, 'docs', 'examples', 'notices', 'seizure-report.json'), 'utf8'),
    ) as Record<string, unknown>;

    const seen = new Map<string, number>();
    const sse = await followSse(
      gw.url,
      receiver,
      (id, at) => {
        if (!seen.has(id)) seen.set(id, at);
      },
      abort.signal,
    );
    const sseDone = sse.done.catch((e: unknown) => out(`SSE ended: ${(e as Error).message}`));

    // Warm-up: a few notices, not measured (JIT, connections, the router's consumer).
    const seal = async (n: number) => {
      const list: { id: string; jwe: string }[] = [];
      for (let i = 0; i < n; i++) {
        const notice = {
          ...sample,
          id: randomUUID(),
          created_at: new Date().toISOString(),
          addressees: ['TH'],
          tlp: 'AMBER',
          summary: `latency bench ${i}`,
        };
        list.push({
          id: notice.id,
          jwe: (await sealNotice(new TextEncoder().encode(JSON.stringify(notice)), { signingKey: sender, brokerKey }))
            .jwe,
        });
      }
      return list;
    };
    const postOne = async (jwe: string) => {
      const res = await fetch(`${gw.url}/v1/notices`, {
        method: 'POST',
        headers: { 'content-type': 'application/jose' },
        body: jwe,
      });
      const at = performance.now();
      await res.arrayBuffer();
      return { status: res.status, at };
    };
    for (const w of await seal(20)) await postOne(w.jwe);
    await sleep(1000);

    const results: RateResult[] = [];
    for (const rate of rates) {
      const count = Math.min(MAX_PER_RATE, rate * seconds);
      const envelopes = await seal(count);
      const sentAt = new Map<string, number>();
      const acceptedAt = new Map<string, number>();
      let errors = 0;
      const inflight: Promise<void>[] = [];
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const e = envelopes[i]!;
        sentAt.set(e.id, performance.now());
        inflight.push(
          postOne(e.jwe).then(
            (r) => {
              if (r.status === 202) acceptedAt.set(e.id, r.at);
              else errors++;
            },
            () => void errors++,
          ),
        );
      }
      const postedIn = performance.now() - t0;
      await Promise.all(inflight);
      const deadline = performance.now() + DRAIN_MS;
      while (performance.now() < deadline && [...acceptedAt.keys()].some((id) => !seen.has(id))) await sleep(20);

      const fromAccept: number[] = [];
      const fromSend: number[] = [];
      const post202: number[] = [];
      for (const [id, accepted] of acceptedAt) {
        post202.push(accepted - sentAt.get(id)!);
        const got = seen.get(id);
        if (got === undefined) continue;
        fromAccept.push(got - accepted);
        fromSend.push(got - sentAt.get(id)!);
      }
      const a = summary(fromAccept);
      const s = summary(fromSend);
      const p = summary(post202);
      const r: RateResult = {
        ratePerSecond: rate,
        seconds,
        sent: count,
        accepted: acceptedAt.size,
        delivered: fromAccept.length,
        lost: acceptedAt.size - fromAccept.length,
        errors,
        post202: { p50Ms: p.p50Ms, p99Ms: p.p99Ms },
        fromAccept: { ...a, beforeAccept: fromAccept.filter((x) => x < 0).length },
        fromSend: { p50Ms: s.p50Ms, p99Ms: s.p99Ms },
        achievedRatePerSecond: round((count * 1000) / postedIn, 1),
      };
      results.push(r);
      out(
        `  @${String(rate).padStart(3)}/s (${r.achievedRatePerSecond}/s achieved, ${count} notices): 202 → SSE  p50 ${a.p50Ms} ms  p99 ${a.p99Ms} ms  (min ${a.minMs}, max ${a.maxMs})` +
          `   | POST → SSE p50 ${s.p50Ms} ms  p99 ${s.p99Ms} ms | POST → 202 p50 ${p.p50Ms} ms  p99 ${p.p99Ms} ms | delivered ${r.delivered}/${r.accepted}, errors ${errors}`,
      );
      await sleep(500);
    }

    abort.abort();
    await sseDone;
    const loadAverageAtEnd = round(loadavg()[0] ?? NaN, 2);
    if (machine.loadAverageAtStart > 0.5 * machine.nproc)
      out(
        `note: the machine was busy (load average ${machine.loadAverageAtStart} at start, ${loadAverageAtEnd} at the end): figures are upper bounds`,
      );
    const doc = {
      when: new Date().toISOString(),
      command: `npm run build && node dist/bench/latency.js${values.rates ? ` --rates ${values.rates}` : ''}${values.seconds ? ` --seconds ${values.seconds}` : ''}${quick ? ' --quick' : ''}`,
      what: '202 of POST /v1/notices (vn-customs, mekong-dragon-6, addressed to TH) → SSE delivery event at th-customs; open-loop fixed rate; loopback, one gateway, one nats-server',
      machine,
      loadAverageAtEnd,
      results,
    };
    const resultsDir = join(repoRoot, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = join(resultsDir, quick ? 'latency-quick.json' : 'latency.json');
    writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
    out(`written ${file}`);
  } finally {
    abort.abort();
    if (gateway) await stopChild(gateway);
    if (nats) await nats.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`latency bench failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
