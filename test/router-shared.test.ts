/**
 * Several routers on the one durable consumer `router` (issue 24): each routes
 * a share, and together they deliver every notice to each recipient once.
 * Real nats-server; each router has its own NATS connection, as a gateway does.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { createLogger } from '../broker/core/logger.js';
import { connectNats, type NatsBus } from '../broker/nats/connection.js';
import { deliveredTo, recordDelivered } from '../broker/routing/delivered.js';
import { readInbox } from '../broker/routing/inbox.js';
import { Router } from '../broker/routing/router.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
// This gateway only ingests; the routers below are the test's own.
const g = await startTestGateway(t, nats.url, { router: false });
const logger = createLogger('silent');

async function connection(name: string): Promise<NatsBus> {
  const bus = await connectNats({ servers: nats.url, name, publishTimeoutMs: 2000, logger });
  t.teardown(() => bus.close());
  return bus;
}

async function router(name: string): Promise<Router> {
  const r = new Router({
    bus: await connection(name),
    registry: () => g.gw.registry.snapshot,
    logger,
    ackWaitSeconds: 30,
    duplicateWindowSeconds: g.config.duplicateWindowSeconds,
    replicas: 1,
    storageKeys: g.gw.keyring,
  });
  // Closed before its connection (teardowns run last-registered first).
  t.teardown(() => r.close());
  return r;
}

async function inboxIds(agency: string): Promise<string[]> {
  const ids: string[] = [];
  let after = 0;
  for (let i = 0; i < 100; i++) {
    const page = await readInbox(g.gw.bus, { agency }, after, 500);
    if (page.deliveries.length === 0) break;
    ids.push(...page.deliveries.map((d) => d.notice_id));
    after = page.next;
  }
  return ids;
}

t.test('two routers on one consumer both route, and every notice reaches each recipient once', async (t) => {
  const a = await router('router-a');
  const b = await router('router-b');
  a.start();
  b.start();
  await waitFor(() => (a.leading && b.leading ? true : undefined), 'both routers to pull');

  const senders = [
    { agency: 'vn-customs', country: 'VN', to: ['TH', 'KH'], want: ['th-customs', 'kh-police-adp'] },
    { agency: 'th-customs', country: 'TH', to: ['VN'], want: ['vn-customs', 'vn-c04'] },
  ];
  const sent = new Map<string, string[]>(); // agency -> notice ids addressed to it
  const total = 60;
  await Promise.all(
    Array.from({ length: 4 }, async (_, w) => {
      for (let i = w; i < total; i += 4) {
        const s = senders[i % senders.length]!;
        const n = sampleNotice('seizure-report', {
          operation: 'mekong-dragon-6',
          origin: { country: s.country, agency: s.agency },
          addressees: s.to,
          tlp: 'AMBER',
        });
        const res = await g.post((await g.seal(n, s.agency)).jwe);
        if (res.status !== 202) throw new Error(`post refused: ${res.status}`);
        for (const r of res.json.recipients as string[]) sent.set(r, [...(sent.get(r) ?? []), n.id as string]);
      }
    }),
  );
  for (const s of senders) for (const r of s.want) t.ok(sent.get(r)?.length, `${r} is a recipient`);

  await waitFor(() => (a.routed + b.routed >= total ? true : undefined), 'all notices routed', 60_000);
  t.comment(`shares: router-a ${a.routed}, router-b ${b.routed}`);
  t.ok(a.routed > 0, `router A routed a share (${a.routed})`);
  t.ok(b.routed > 0, `router B routed a share (${b.routed})`);
  t.equal(a.routed + b.routed, total, 'together, each notice routed once (no redelivery)');
  for (const [agency, ids] of sent) {
    const got = (await inboxIds(agency)).filter((id) => ids.includes(id));
    t.equal(got.length, ids.length, `${agency}: ${ids.length} deliveries`);
    t.equal(new Set(got).size, ids.length, `${agency}: each exactly once`);
  }
});

t.test('two routers recording one notice at once: the record holds both, neither write lost', async (t) => {
  const [busA, busB] = [await connection('record-a'), await connection('record-b')];
  for (let round = 0; round < 20; round++) {
    const id = randomUUID();
    // Two attempts at one notice whose plans differ (the registry changed between them): one first, one redelivered.
    await Promise.all([
      recordDelivered(busA, 1, id, ['th-customs']),
      recordDelivered(busB, 1, id, ['kh-police-adp', 'th-customs']),
    ]);
    const both = await deliveredTo(g.gw.bus, id);
    if (JSON.stringify(both) !== JSON.stringify(['kh-police-adp', 'th-customs']))
      return t.fail(`round ${round}: the record is ${JSON.stringify(both)}`);
  }
  t.pass('20 rounds of concurrent records: each holds the union');
});
