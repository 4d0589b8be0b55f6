/**
 * Retention on a real nats-server and a real gateway, time driven by the
 * gateway's injectable clock: the retention eraser (its own lease) erases a
 * notice past the network retention with a broker-signed notice-erased event
 * (actor the broker, reason "retention"), leaves a younger one, keeps its
 * cursor in KV where the younger one waits, and `liaison admin review-due`
 * lists the notices past their review date.
 */
import t from 'tap';
import type { AddressInfo } from 'node:net';
import { erasureEventId } from '../broker/admin/erasure-record.js';
import { openRegistryEvent } from '../broker/admin/registry-event.js';
import { STREAMS } from '../broker/nats/streams.js';
import { decodeEntry } from '../broker/log/entry.js';
import { DELIVERY_HEADERS } from '../broker/routing/plan.js';
import { RETENTION_BUCKET } from '../broker/erasure/retention.js';
import { isErased, readNoticeKey } from '../broker/vault/notice-keys.js';
import { runCli } from './helpers/cli.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const DAY = 24 * 3600 * 1000;
let clock = Date.now();
const nats = await startTestNats(t);
const g = await startTestGateway(
  t,
  nats.url,
  { retentionDays: 30, reviewDays: 20, retentionSweepIntervalMs: 200, checkpointIntervalMs: 300 },
  { now: () => new Date(clock) },
);
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;
const bus = g.gw.bus;

async function count(stream: string, subject: string, noticeId: string, erasures = false): Promise<number> {
  let n = 0;
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(stream, seq, subject);
    if (!m) return n;
    const mine = m.header?.get('Nats-Msg-Id') === noticeId || m.header?.get(DELIVERY_HEADERS.noticeId) === noticeId;
    if (mine && erasures === (m.header?.get('Liaison-Erasure') !== '')) n++;
    seq = m.seq + 1;
  }
}
async function post() {
  const n = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
    created_at: new Date(clock).toISOString(),
  });
  const res = await g.post((await g.seal(n, 'vn-customs')).jwe);
  if (res.status !== 202) throw new Error(`post refused: ${res.status} ${JSON.stringify(res.json)}`);
  await waitFor(
    async () => ((await count(STREAMS.deliveries, 'deliveries.th-customs.>', n.id)) === 1 ? true : undefined),
    'routing',
  );
  return { id: n.id, logIndex: res.json['log_index'] as number };
}
const erasedKey = async (id: string) => {
  const k = await readNoticeKey(bus, id);
  return k && isErased(k) ? k : undefined;
};
const cursor = async () => {
  const kv = await bus.bucket(RETENTION_BUCKET, { bindOnly: true });
  const r = await kv.get('cursor');
  return r ? Number(new TextDecoder().decode(r.value)) : undefined;
};

const a = await post();
clock += 10 * DAY;
const b = await post();

t.test('nothing is erased before its retention ends', async (t) => {
  clock += 19 * DAY; // a: 29 days old
  await waitFor(async () => ((await cursor()) !== undefined ? true : undefined), 'a first sweep');
  const sweptAt = await cursor();
  t.equal(await erasedKey(a.id), undefined);
  t.equal(await count(STREAMS.notices, 'notices.>', a.id), 1);
  t.equal(sweptAt, a.logIndex + 1, 'the cursor waits at the oldest notice not due yet');
});

t.test('past its retention a notice is erased by the broker, with the same event as an operator', async (t) => {
  clock += 2 * DAY; // a: 31 days old, b: 21
  const key = await waitFor(() => erasedKey(a.id), 'the automatic erasure');
  // The key is shredded first; the erasure record to the recipient comes last.
  await waitFor(
    async () => ((await count(STREAMS.deliveries, 'deliveries.>', a.id, true)) === 1 ? true : undefined),
    'the erasure record',
  );
  t.equal(key.erased_by, erasureEventId(a.id));
  const stored = await bus.lastMessage(STREAMS.registryEvents, `registry-events.${key.erased_by}`);
  const { event } = openRegistryEvent(new TextDecoder().decode(stored!.data), g.jwks.keys);
  t.same(event.actor, { broker: g.config.brokerId, kid: g.gw.keyring.signing.kid }, 'the actor is the broker');
  t.equal(event.reason, 'retention');
  t.same(event.subject, { notice: a.id });
  t.equal(event.at, new Date(Date.parse(event.at)).toISOString());
  t.ok(Date.parse(event.at) >= clock - 1000, 'dated by the broker clock');
  let entry: Record<string, unknown> | undefined;
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(STREAMS.log, seq, 'log.registry');
    if (!m) break;
    const e = decodeEntry(m.data) as unknown as Record<string, unknown>;
    if (e['event_id'] === key.erased_by) entry = e;
    seq = m.seq + 1;
  }
  t.match(entry, { kind: 'registry', event: 'notice-erased', actor: g.config.brokerId, subject: { notice: a.id } });
  t.equal(await count(STREAMS.notices, 'notices.>', a.id), 0, 'its content is gone');
  t.equal(await count(STREAMS.deliveries, 'deliveries.>', a.id), 0, 'its delivery is gone');
  t.equal(await count(STREAMS.deliveries, 'deliveries.>', a.id, true), 1, 'its recipient has an erasure record');
  t.equal(await count(STREAMS.notices, 'notices.>', b.id), 1, 'a younger notice is kept');
  await waitFor(async () => ((await cursor()) === b.logIndex + 1 ? true : undefined), 'the cursor past a');
});

t.test('review-due lists the notices past their review date, not the erased ones', async (t) => {
  const cli = (...args: string[]) => runCli(['admin', 'review-due', ...args, '--url', url, '--data-dir', g.dataDir]);
  const r = await cli('--as', 'hub-operator', '--json');
  t.equal(r.code, 0, r.stderr);
  const due = JSON.parse(r.stdout) as { notice_id: string; review_at: string }[];
  t.same(
    due.map((d) => d.notice_id),
    [b.id],
    'b (21 days, review after 20) is due; a is erased',
  );
  const text = await cli('--as', 'hub-operator');
  t.match(text.stdout, `${b.id} mekong-dragon-6 seizure-report`);
  t.match(text.stdout, '1 notice due for review');
  const refused = await cli('--as', 'vn-customs');
  t.equal(refused.code, 1, 'an agency without the operator role is refused');
  t.match(refused.stderr, 'forbidden');
  t.equal((await cli('--as', 'hub-operator', '--limit', '0')).code, 2);
});

t.test('the next one is erased when its retention ends, and the cursor moves on', async (t) => {
  clock += 10 * DAY;
  await waitFor(() => erasedKey(b.id), 'the erasure of b');
  // The key is shredded first (step 1), the NOTICES copy purged after it (step 2): wait for that, bounded.
  await waitFor(
    async () => ((await count(STREAMS.notices, 'notices.>', b.id)) === 0 ? true : undefined),
    'the content of b purged from NOTICES',
  );
  await waitFor(async () => ((await cursor())! > b.logIndex + 1 ? true : undefined), 'the cursor past b');
  t.equal(await count(STREAMS.deliveries, 'deliveries.>', b.id), 0, 'its delivery is gone');
});
