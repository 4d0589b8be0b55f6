/**
 * Three gateways on the three-node cluster, every one routing a share of the
 * notices from the one shared consumer (issue 24). Under load from several
 * agencies, one gateway (a real child process) is killed with SIGKILL while
 * its router has notices in hand: nothing lost, nothing twice, in the log or
 * in any inbox. Loopback only; every wait bounded; every process stopped by
 * its PID at teardown.
 */
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_NODE_ARGS } from '../../broker/core/heap-limits.js';
import { repoRoot } from '../../broker/core/paths.js';
import { verifyReceipt, type ReceiptClaims } from '../../broker/ingest/notice-receipt.js';
import { freePort } from '../../broker/nats/local-server.js';
import { STREAMS } from '../../broker/nats/streams.js';
import { readInbox } from '../../broker/routing/inbox.js';
import { ROUTER_CONSUMER } from '../../broker/routing/router.js';
import { startGateway } from '../../bench/levels.js';
import { stopChild } from '../../bench/processes.js';
import { routedTotal } from '../../bench/router-shares.js';
import { sampleNotice, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { startTestCluster } from './cluster.js';
import { replayLog } from './log-replay.js';

t.setTimeout(170_000);
const cluster = await startTestCluster(t);
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-router-faults-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
// The same settings on every gateway: the consumer's ack wait is set by whichever router asks last.
const overrides = {
  streamReplicas: 3,
  publishTimeoutMs: 4000,
  retryAfterSeconds: 1,
  leaseTtlSeconds: 3,
  routerAckWaitSeconds: 10,
  checkpointIntervalMs: 500,
};

/** A fresh R3 cluster on a busy 2-core machine can time out the first stream requests: a bounded retry. */
async function gateway(): Promise<TestGateway> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTestGateway(t, cluster.url, overrides, { dataDir });
    } catch (e) {
      if (attempt >= 3) throw e;
      await cluster.waitForJetStream();
    }
  }
}
const g1 = await gateway();
const g2 = await gateway();

/** The third gateway: `broker/main.ts` in a process of its own (the tap TypeScript loader), so it can really die. */
const tsLoader = join(repoRoot, 'node_modules', '@tapjs', 'typescript', 'dist', 'esm', 'import.mjs');
const opsPort = await freePort();
const victim: { child: ChildProcess; url: string } = await startGateway(
  {
    ...process.env,
    NATS_URL: cluster.url,
    LIAISON_DATA_DIR: dataDir,
    LIAISON_HOST: '127.0.0.1',
    LIAISON_PORT: String(await freePort()),
    LIAISON_OPS_PORT: String(opsPort),
    LIAISON_STREAM_REPLICAS: '3',
    LIAISON_PUBLISH_TIMEOUT_MS: '4000',
    LIAISON_RETRY_AFTER_SECONDS: '1',
    LIAISON_LEASE_TTL_SECONDS: '3',
    LIAISON_ROUTER_ACK_WAIT_SECONDS: '10',
    LIAISON_CHECKPOINT_INTERVAL_MS: '500',
    LIAISON_RATE_LIMIT_MAX: '0',
    LIAISON_MAX_CONNECTIONS_PER_ADDRESS: '0',
    LOG_LEVEL: 'warn',
  },
  { mainJs: join(repoRoot, 'broker', 'main.ts'), nodeArgs: [...GATEWAY_NODE_ARGS, `--import=${tsLoader}`] },
);
t.teardown(() => stopChild(victim.child));
const victimRouted = () => routedTotal(`http://127.0.0.1:${opsPort}`);

/** Post to a gateway: the two in this process by inject, the child over HTTP; a dead child answers status 0. */
type Post = (jwe: string) => Promise<{ status: number; json: Record<string, any> }>;
const viaHttp: Post = async (jwe) => {
  try {
    const res = await fetch(`${victim.url}/v1/notices`, {
      method: 'POST',
      headers: { 'content-type': 'application/jose' },
      body: jwe,
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  } catch {
    return { status: 0, json: {} };
  }
};
const posts: Post[] = [(jwe) => g1.post(jwe), (jwe) => g2.post(jwe), viaHttp];

/** A well-behaved sender: on 503 or no answer, the same envelope again on the next gateway, within 30 s. */
async function send(jwe: string, first: number): Promise<{ status: number; json: Record<string, any> }> {
  const deadline = Date.now() + 30_000;
  for (let attempt = 0; ; attempt++) {
    const r = await posts[(first + attempt) % posts.length]!(jwe);
    if ((r.status !== 503 && r.status !== 0) || Date.now() > deadline) return r;
    await sleep(100);
  }
}

const senders = [
  { agency: 'vn-customs', country: 'VN', to: ['TH', 'KH'] },
  { agency: 'th-customs', country: 'TH', to: ['VN', 'LA'] },
  { agency: 'la-customs', country: 'LA', to: ['CN', 'TH'] },
  { agency: 'cn-customs', country: 'CN', to: ['VN'] },
];

t.test('kill one of three routers mid-flight: each notice logged once and in each inbox once', async (tt) => {
  const t0 = Date.now();
  const total = 360;
  const envelopes = await Promise.all(
    Array.from({ length: total }, async (_, i) => {
      const s = senders[i % senders.length]!;
      const n = sampleNotice('seizure-report', {
        operation: 'mekong-dragon-6',
        origin: { country: s.country, agency: s.agency },
        addressees: s.to,
        tlp: 'AMBER',
      });
      return { id: n.id as string, jwe: (await g1.seal(n, s.agency)).jwe };
    }),
  );
  const PACE_MS = 30;
  const t1 = Date.now();
  const receipts = new Map<string, ReceiptClaims>();
  const refused: number[] = [];
  let next = 0;
  let postedAtKill = -1;
  let sharesAtKill: number[] = [];
  // The kill comes while the load goes on: once a third is posted and each router has routed a share (read from the
  // two in-process gateways and from the victim's own /metrics), the victim's process is killed with whatever it holds.
  const killer = (async () => {
    const deadline = Date.now() + 60_000;
    while (next < total && Date.now() < deadline) {
      const shares = [g1.gw.router!.routed, g2.gw.router!.routed, await victimRouted().catch(() => 0)];
      if (next >= total / 3 && shares.every((n) => n > 0)) {
        process.kill(victim.child.pid!, 'SIGKILL');
        [postedAtKill, sharesAtKill] = [next, shares];
        tt.comment(
          `killed the victim after ${Date.now() - t0} ms, ${next} of ${total} posted; shares ${shares.join(', ')}`,
        );
        return;
      }
      await sleep(50);
    }
  })();
  const worker = async (w: number) => {
    while (next < total) {
      const i = next++;
      // Paced (about 33 a second), so every router, the two nice-10 background threads in this busy process too, gets
      // CPU while the load runs; flat out, those two only route once the posting stops.
      await sleep(t1 + i * PACE_MS - Date.now());
      const r = await send(envelopes[i]!.jwe, w);
      if (r.status === 202) receipts.set(envelopes[i]!.id, await verifyReceipt(r.json.receipt as string, g1.jwks));
      else refused.push(r.status);
    }
  };
  await Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));
  await killer;
  tt.comment(`${receipts.size} receipts, ${refused.length} refused, in ${Date.now() - t0} ms`);
  tt.same(refused, [], 'every notice got a receipt (after retries) despite the dead gateway');
  tt.ok(
    postedAtKill > 0 && postedAtKill < total,
    `the victim was killed under load (${postedAtKill} of ${total} posted)`,
  );
  tt.ok(
    sharesAtKill.length === 3 && sharesAtKill.every((n) => n > 0),
    `each of the three routers routed a share before the kill (${sharesAtKill.join(', ')})`,
  );

  // Whatever the victim had in hand comes back after the ack wait; the two survivors route it and all the rest.
  const expected = new Map<string, Set<string>>(); // agency -> notice ids a receipt named it a recipient of
  for (const [id, c] of receipts) for (const r of c.recipients) expected.set(r, (expected.get(r) ?? new Set()).add(id));
  const inbox = async (agency: string) => {
    const ids: string[] = [];
    for (let after = 0, i = 0; i < 100; i++) {
      const page = await readInbox(g1.gw.bus, { agency }, after, 500);
      if (page.deliveries.length === 0) break;
      ids.push(...page.deliveries.map((d) => d.notice_id));
      after = page.next;
    }
    return ids;
  };
  const inboxes = new Map<string, string[]>();
  for (const [agency, want] of expected)
    inboxes.set(
      agency,
      await waitFor(
        async () => {
          const got = await inbox(agency).catch((): string[] => []);
          return [...want].every((id) => got.includes(id)) ? got : undefined;
        },
        `${agency}: all ${want.size} deliveries`,
        60_000,
      ),
    );
  const consumer = await g1.gw.bus.jsm.consumers.info(STREAMS.notices, ROUTER_CONSUMER);
  tt.comment(
    `routed after: ${g1.gw.router!.routed} + ${g2.gw.router!.routed} + victim's ${sharesAtKill[2]}+; ` +
      `${consumer.delivered.consumer_seq - consumer.delivered.stream_seq} redeliveries, in ${Date.now() - t0} ms`,
  );
  // Past another ack wait: a late redelivery would have written by now.
  await sleep(11_000);
  for (const [agency, want] of expected) {
    const got = (await inbox(agency)).filter((id) => receipts.has(id));
    const twice = got.filter((id, i) => got.indexOf(id) !== i);
    const stray = got.filter((id) => !want.has(id));
    tt.same(twice, [], `${agency}: no notice twice (${inboxes.get(agency)!.length} deliveries)`);
    tt.same(stray, [], `${agency}: nothing it was not a recipient of`);
    tt.equal(new Set(got).size, want.size, `${agency}: each of its ${want.size} notices`);
  }
  const log = await replayLog(g1.gw.bus);
  const atReceipt = [...receipts].filter(([id, c]) => {
    const at = log.get(id) ?? [];
    return at.length === 1 && at[0]!.index === c.log_index && at[0]!.entry.sha256 === c.sha256;
  });
  tt.equal(atReceipt.length, receipts.size, 'each receipted notice is in the log once, at its receipt index');
  tt.same(
    [...log].filter(([, at]) => at.length > 1).map(([id]) => id),
    [],
    'no notice is in the log twice',
  );
});
