/**
 * Fault tests on a three-node NATS cluster (R3 streams) with two gateways of
 * one broker. Loopback only; every wait is bounded; every process is stopped
 * by its PID at teardown. The whole file stays well under three minutes.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LiaisonError } from '../../broker/core/errors.js';
import { verifyReceipt, type ReceiptClaims } from '../../broker/ingest/notice-receipt.js';
import { STREAMS } from '../../broker/nats/streams.js';
import { sampleNotice, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sleep } from '../helpers/wait.js';
import { startTestCluster } from './cluster.js';
import { replayLog } from './log-replay.js';

t.setTimeout(170_000);
const cluster = await startTestCluster(t);
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-faults-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
// Both gateways create (or check) every stream and bucket with 3 replicas before any node is killed.
const overrides = {
  streamReplicas: 3,
  publishTimeoutMs: 4000,
  retryAfterSeconds: 1,
  leaseTtlSeconds: 3,
  checkpointIntervalMs: 500,
};
/** A fresh R3 cluster on a busy 2-core machine can time out the first stream requests: a bounded retry. */
async function gateway(
  o: Record<string, unknown> = overrides,
  tt: Parameters<typeof startTestGateway>[0] = t,
): Promise<TestGateway> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTestGateway(tt, cluster.url, o, { dataDir });
    } catch (e) {
      if (attempt >= 3) throw e;
      await cluster.waitForJetStream();
    }
  }
}
const g1 = await gateway();
const g2 = await gateway();
for (const s of [STREAMS.notices, STREAMS.log]) {
  const info = await g1.gw.bus.jsm.streams.info(s);
  if (info.config.num_replicas !== 3) throw new Error(`${s} has ${info.config.num_replicas} replicas`);
}

const senders = [
  {
    agency: 'vn-customs',
    patch: {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
      tlp: 'GREEN',
    },
  },
  {
    agency: 'th-customs',
    patch: {
      operation: 'mekong-dragon-6',
      origin: { country: 'TH', agency: 'th-customs' },
      addressees: ['VN'],
      tlp: 'AMBER',
    },
  },
];
let seq = 0;
async function envelope(g: TestGateway): Promise<{ id: string; jwe: string }> {
  const s = senders[seq++ % senders.length]!;
  const n = sampleNotice('seizure-report', s.patch);
  return { id: n.id as string, jwe: (await g.seal(n, s.agency)).jwe };
}

/**
 * What a well-behaved sender does: on 503 (or no answer) retry the same envelope, alternating gateways, within a deadline.
 * `only`: retry on that one gateway instead of alternating.
 */
async function sendWithRetry(
  jwe: string,
  first: number,
  deadlineMs: number,
  only?: TestGateway,
): Promise<{ status: number; json: Record<string, any>; attempts: number }> {
  const gws = only ? [only] : [g1, g2];
  let last = { status: 0, json: {} as Record<string, any> };
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 0; attempt < 200; attempt++) {
    last = await gws[(first + attempt) % gws.length]!.post(jwe);
    if (last.status !== 503 || Date.now() > deadline) return { ...last, attempts: attempt + 1 };
    await sleep(200);
  }
  return { ...last, attempts: 200 };
}

async function checkReceiptsAgainstLog(tt: Pick<typeof t, 'fail' | 'equal'>, receipts: Map<string, ReceiptClaims>) {
  const log = await replayLog(g1.gw.bus);
  let once = 0;
  for (const [id, claims] of receipts) {
    const at = log.get(id) ?? [];
    if (at.length === 1 && at[0]!.index === claims.log_index && at[0]!.entry.sha256 === claims.sha256) once++;
    else
      tt.fail(
        `notice ${id}: receipt says index ${claims.log_index}, log has ${JSON.stringify(at.map((a) => a.index))}`,
      );
  }
  tt.equal(
    once,
    receipts.size,
    `each of the ${receipts.size} receipted notices is in the log exactly once, at its receipt's index, with its commitment`,
  );
  const twice = [...log.values()].filter((a) => a.length > 1);
  tt.equal(twice.length, 0, 'no notice is in the log twice');
}

t.test('kill one NATS node under load: every receipted notice is in the log exactly once', async (tt) => {
  const t0 = Date.now();
  const receipts = new Map<string, ReceiptClaims>();
  const refused: number[] = [];
  const total = 120;
  const envelopes = await Promise.all(Array.from({ length: total }, (_, i) => envelope(i % 2 ? g2 : g1)));
  let next = 0;
  let killed = false;
  const worker = async (w: number) => {
    while (next < total) {
      const i = next++;
      if (i === 40 && !killed) {
        killed = true;
        // Kill the node that leads the LOG stream: the hardest case (a leader election under load).
        const leader = (await g1.gw.bus.jsm.streams.info(STREAMS.log)).cluster?.leader;
        const victim = Math.max(
          0,
          cluster.nodes.findIndex((n) => n.name === leader),
        );
        tt.comment(`killing ${cluster.nodes[victim]!.name} (LOG leader ${leader}) after ${Date.now() - t0} ms`);
        await cluster.kill(victim);
      }
      const r = await sendWithRetry(envelopes[i]!.jwe, w, 30_000);
      if (r.status === 202) receipts.set(envelopes[i]!.id, await verifyReceipt(r.json.receipt as string, g1.jwks));
      else refused.push(r.status);
    }
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  tt.comment(`${receipts.size} receipts, ${refused.length} refused, in ${Date.now() - t0} ms`);
  tt.same(refused, [], 'every notice got a receipt (after retries) despite the dead node');
  await checkReceiptsAgainstLog(tt, receipts);
});

t.test('stop all of NATS: 503 with Retry-After, then recovery without a gateway restart', async (tt) => {
  for (let i = 0; i < cluster.nodes.length; i++) if (cluster.nodes[i]!.server) await cluster.stop(i);
  const { jwe, id } = await envelope(g1);
  const down = await g1.post(jwe);
  tt.equal(down.status, 503, 'NATS down: 503');
  tt.equal(down.json.code, 'unavailable');
  tt.equal(down.headers['retry-after'], '1');
  tt.notOk(down.json.receipt, 'no receipt');
  tt.equal((await g2.post(jwe)).status, 503, 'the other gateway too');

  await Promise.all(cluster.nodes.map((_, i) => cluster.start(i)));
  const r = await sendWithRetry(jwe, 0, 45_000);
  tt.equal(r.status, 202, `accepted after recovery (${r.attempts} attempts), same gateway processes`);
  // The other gateway may still be reconnecting: its sender retries on 503 too, on that gateway only.
  const again = await sendWithRetry(jwe, 0, 30_000, g2);
  tt.equal(again.status, 202, `the other gateway accepts the retry (${again.attempts} attempts)`);
  tt.equal(again.json.receipt, r.json.receipt, 'a further retry on the other gateway returns the same receipt');
  const log = await replayLog(g1.gw.bus);
  tt.equal(log.get(id)?.length, 1, 'and the notice is in the log once');
});

t.test('a gateway killed mid-request: the retry with the same envelope is idempotent', async (tt) => {
  // A third gateway of the same broker; it dies (its NATS connection goes) at a chosen point of step 7.
  const victim = async (when: 'after-notice' | 'after-log') => {
    const g = await gateway({ ...overrides, router: false, checkpointer: false }, tt);
    const bus = g.gw.bus;
    const publish = bus.publish.bind(bus);
    bus.publish = async (subject, data, opts) => {
      if (!subject.startsWith('log.')) return publish(subject, data, opts);
      // The LOG publish: die before it (the notice is stored, its entry is not) or right after its ack (no receipt sent).
      if (when === 'after-log') await publish(subject, data, opts);
      void bus.nc.close();
      throw new LiaisonError('unavailable', { detail: 'killed for the test' });
    };
    return g;
  };
  await cluster.waitForJetStream();
  for (const when of ['after-notice', 'after-log'] as const) {
    const g3 = await victim(when);
    tt.comment(`${when}: victim gateway started`);
    const { jwe, id } = await envelope(g3);
    const dead = await g3.post(jwe);
    tt.not(dead.status, 202, `${when}: the killed gateway gave no receipt`);
    const r1 = await sendWithRetry(jwe, 0, 30_000);
    tt.equal(r1.status, 202, `${when}: the retry on another gateway is accepted`);
    const r2 = await g2.post(jwe);
    tt.equal(r2.json.receipt, r1.json.receipt, `${when}: a second retry gets the same receipt`);
    const claims = await verifyReceipt(r1.json.receipt as string, g1.jwks);
    const at = (await replayLog(g1.gw.bus)).get(id) ?? [];
    tt.equal(at.length, 1, `${when}: one log entry`);
    tt.equal(at[0]?.index, claims.log_index, `${when}: at the receipt's index`);
  }
});
