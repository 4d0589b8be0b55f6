import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { findNoticeEntry } from '../broker/log/notice-lookup.js';
import { evaluateWithdrawal, NOT_YOURS, withdrawalRecipients } from '../broker/ingest/withdrawal-policy.js';
import type { Agency, Operation } from '../broker/registry/model.js';
import { DELIVERED_BUCKET, deliveredOriginal, deliveredTo, recordDelivered } from '../broker/routing/delivered.js';
import { planDeliveries } from '../broker/routing/plan.js';
import type { NoticeHeader } from '../broker/core/notice.js';
import { INDEX_BUCKET } from '../broker/log/checkpoint-store.js';
import type { NoticeLogEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import type { InboxDelivery } from '../broker/core/inbox-delivery.js';
import { sampleNotice, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { inboxClients } from './helpers/inbox.js';
import { sleep, waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
// A short checkpoint interval, so that one case can wait for the log-index to hold the original.
// The inbox is polled hard while waiting for routing: a rate limit that the polling cannot reach.
const g = await startTestGateway(t, nats.url, {
  leaseTtlSeconds: 3,
  routerAckWaitSeconds: 2,
  checkpointIntervalMs: 300,
  rateLimitMax: 100_000,
});
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;

const EVERYONE = [
  'th-customs',
  'kh-police-adp',
  'la-customs',
  'cn-customs',
  'vn-c04',
  'vn-customs',
  'gb-border-force',
  'fr-douane',
];

const client = inboxClients(g, url);

async function deliveriesOf(agency: string, noticeId: string): Promise<InboxDelivery[]> {
  const out: InboxDelivery[] = [];
  let after = 0;
  for (let i = 0; i < 100; i++) {
    const page = await client(agency).pull({ after, limit: 500 });
    out.push(...page.deliveries.filter((d) => d.notice_id === noticeId));
    if (page.deliveries.length === 0) break;
    after = page.next;
  }
  return out;
}

const routed = (noticeId: string, expected: number) =>
  waitFor(async () => {
    let n = 0;
    for (const agency of EVERYONE) n += (await deliveriesOf(agency, noticeId)).length;
    return n >= expected ? n : undefined;
  }, `routing of ${noticeId}`);

async function send(tg: TestGateway, notice: Record<string, unknown>, from: string) {
  return tg.post((await tg.seal(notice, from)).jwe);
}
/** Post as a client should: a 503 (here: the original not routed yet, on a loaded machine) is retried after Retry-After, a few times. */
async function post(notice: Record<string, unknown>, from = 'vn-customs') {
  let res = await send(g, notice, from);
  for (let i = 0; i < 5 && res.status === 503; i++) {
    await sleep(1000 * Number(res.headers['retry-after'] ?? 1));
    res = await send(g, notice, from);
  }
  if (res.status !== 202) throw new Error(`post refused: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

const original = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
    tlp: 'AMBER',
    ...patch,
  });

/** A withdrawal of `of`, sent as `from` (origin set to match the sender, so only the withdrawal rules can refuse it). */
function withdrawal(
  of: string,
  patch: Record<string, unknown> = {},
  body: Record<string, unknown> = {},
): Record<string, any> {
  const w = sampleNotice('withdrawal', { references: [of], ...patch });
  w['body'] = { ...w['body'], supersedes: of, ...body };
  return w;
}

const logSize = async () => (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.last_seq;

/** Every earlier recipient pulls the withdrawal once, decrypts it and verifies the origin's signature; nobody else gets it. */
async function checkReached(t: Test, w: Record<string, any>, receipt: Record<string, any>, to: string[]) {
  t.same(receipt['recipients'], to, 'the receipt names the recipients of the original');
  await routed(w['id'], to.length);
  for (const agency of EVERYONE) {
    const got = await deliveriesOf(agency, w['id']);
    if (to.includes(agency)) {
      t.equal(got.length, 1, `${agency} pulls the withdrawal once`);
      t.match(got[0], {
        type: 'withdrawal',
        operation: 'mekong-dragon-6',
        origin: { agency: 'vn-customs', country: 'VN' },
        log_index: receipt['log_index'],
      });
      const opened = await client(agency).open(got[0]!);
      t.same(opened.notice, w, `${agency} decrypts it and verifies vn-customs' signature`);
      t.equal(opened.signerKid, 'vn-customs-sig-1');
    } else {
      t.equal(got.length, 0, `${agency} gets nothing`);
    }
  }
}

t.test(
  'a withdrawal sent at once (before the log-index has the original) reaches every earlier recipient and nobody else',
  async (t) => {
    const n = original();
    const first = await post(n);
    t.same(first['recipients'], ['kh-police-adp', 'th-customs']);
    // Addressed to la-customs on purpose: a withdrawal goes where the original went, not to its own addressees.
    const w = withdrawal(
      n.id,
      { addressees: ['la-customs'] },
      { action: 'withdraw', reason: 'Sai số container; báo cáo không còn giá trị.', correction: undefined },
    );
    delete w['body'].correction;
    const receipt = await post(w);
    await checkReached(t, w, receipt, ['kh-police-adp', 'th-customs']);
    await routed(n.id, 2);
    t.equal((await deliveriesOf('th-customs', n.id)).length, 1, 'the original is still there, once');
  },
);

t.test('a correction of a notice already in the log-index; TLP:RED named only', async (t) => {
  const n = original({ addressees: ['th-customs'], tlp: 'RED' });
  await post(n);
  const kv = await g.gw.bus.kv(INDEX_BUCKET);
  await waitFor(
    async () => ((await kv.get(n.id))?.operation === 'PUT' ? true : undefined),
    'the checkpointer to index the original',
    15_000,
  );
  const w = withdrawal(n.id, { tlp: 'RED', addressees: ['th-customs'] });
  const receipt = await post(w);
  await checkReached(t, w, receipt, ['th-customs']);
});

/** Change the registry for one test (as an operator would), and put it back after. */
async function withOperation(t: Test, change: (op: Operation) => Operation) {
  const before = g.gw.registry.snapshot.operation('mekong-dragon-6')!;
  const after = change(before);
  await g.gw.registry.putOperation(after);
  await waitFor(
    () => (JSON.stringify(g.gw.registry.snapshot.operation(before.id)) === JSON.stringify(after) ? true : undefined),
    'the registry change',
  );
  t.teardown(async () => {
    await g.gw.registry.putOperation(before);
    await waitFor(
      () => (JSON.stringify(g.gw.registry.snapshot.operation(before.id)) === JSON.stringify(before) ? true : undefined),
      'the registry to be put back',
    );
  });
}
async function withAgency(t: Test, id: string, change: (a: Agency) => Agency) {
  const before = g.gw.registry.snapshot.agency(id)!;
  const after = change(before);
  await g.gw.registry.putAgency(after);
  await waitFor(
    () => (JSON.stringify(g.gw.registry.snapshot.agency(id)) === JSON.stringify(after) ? true : undefined),
    'the registry change',
  );
  let restored: Promise<void> | undefined;
  const restore = () =>
    (restored ??= (async () => {
      await g.gw.registry.putAgency(before);
      await waitFor(
        () => (JSON.stringify(g.gw.registry.snapshot.agency(id)) === JSON.stringify(before) ? true : undefined),
        'the registry to be put back',
      );
    })());
  t.teardown(restore);
  return restore;
}

t.test('an agency that has left the operation since the original still gets the withdrawal', async (t) => {
  const n = original();
  t.same((await post(n))['recipients'], ['kh-police-adp', 'th-customs']);
  await routed(n.id, 2);
  await withOperation(t, (op) => ({ ...op, members: op.members.filter((m) => m !== 'kh-police-adp') }));
  const w = withdrawal(n.id);
  const receipt = await post(w);
  await checkReached(t, w, receipt, ['kh-police-adp', 'th-customs']);
});

t.test('once the operation is inactive, a withdrawal is still accepted and delivered', async (t) => {
  const n = original();
  await post(n);
  await routed(n.id, 2);
  await withOperation(t, (op) => ({ ...op, status: 'inactive' }));
  const res = await send(
    g,
    sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
    }),
    'vn-customs',
  );
  t.equal(res.status, 403, 'an ordinary notice is refused in the inactive operation');
  const w = withdrawal(n.id);
  const receipt = await post(w);
  await checkReached(t, w, receipt, ['kh-police-adp', 'th-customs']);
});

t.test(
  'the receipts name exactly the deliveries: a member without a key gets neither the original nor its withdrawal',
  async (t) => {
    // kh-police-adp is a member with the subscribe role but no usable encryption key when the original is sent: it is not
    // a recipient (ingest asks the router's own question, broker/formats/registry.ts deliveryKeyAt), so the original's receipt
    // leaves it out, and once it has a key again the withdrawal does not reach it either: it never had the original.
    const keyBack = await withAgency(t, 'kh-police-adp', (a) => ({
      ...a,
      keys: a.keys.map((k) => (k.use === 'enc' ? { ...k, not_before: '2999-01-01T00:00:00Z' } : k)),
    }));
    const n = original({ addressees: ['*'] });
    const first = await post(n);
    t.notOk(
      (first['recipients'] as string[]).includes('kh-police-adp'),
      'the original does not name the member without a key',
    );
    await routed(n.id, (first['recipients'] as string[]).length);
    t.same(
      await deliveredTo(g.gw.bus, n.id),
      first['recipients'],
      'the router delivered to exactly the recipients the receipt named',
    );
    await keyBack();
    const w = withdrawal(n.id);
    const receipt = await post(w);
    await checkReached(t, w, receipt, first['recipients'] as string[]);
  },
);

t.test('only the origin agency may withdraw a notice; unknown notices are refused; nothing is logged', async (t) => {
  const n = original();
  await post(n);
  await routed(n.id, 2);
  const before = await logSize();

  const refusedIds: unknown[] = [];
  const refused = async (
    notice: Record<string, unknown>,
    from: string,
    status: number,
    code: string,
    detail: RegExp | string | undefined,
    what: string,
  ) => {
    refusedIds.push(notice['id']);
    const res = await send(g, notice, from);
    t.equal(res.status, status, `${what}: ${status}`);
    t.equal(res.json['code'] ?? res.json['type']?.split('/').pop(), code, `${what}: ${code}`);
    if (detail !== undefined) t.match(res.json['detail'], detail, `${what}: says why`);
    return res;
  };
  const asTh = (patch: Record<string, unknown> = {}) =>
    withdrawal(n.id, { origin: { country: 'TH', agency: 'th-customs' }, ...patch });
  const byTh = await refused(
    asTh(),
    'th-customs',
    403,
    'policy-denied',
    NOT_YOURS,
    'a recipient withdraws the origin notice',
  );
  await refused(
    withdrawal(n.id, { origin: { country: 'LA', agency: 'la-customs' } }),
    'la-customs',
    403,
    'policy-denied',
    NOT_YOURS,
    'another member withdraws it',
  );
  await refused(
    withdrawal(n.id, { origin: { country: 'GB', agency: 'gb-border-force' } }),
    'gb-border-force',
    403,
    'policy-denied',
    /not a member of the operation/,
    'an agency outside the operation',
  );
  const unknown = await refused(
    withdrawal(randomUUID()),
    'vn-customs',
    403,
    'policy-denied',
    NOT_YOURS,
    'an unknown notice id',
  );
  t.equal(unknown.json['detail'], byTh.json['detail'], 'unknown and not-yours read the same (no probing)');
  // Someone else's notice, withdrawn in the name of its origin but signed by another agency: the usual origin check.
  await refused(
    withdrawal(n.id),
    'th-customs',
    403,
    'policy-denied',
    /origin\.agency/,
    'signed by another agency in the origin name',
  );

  await refused(
    withdrawal(n.id, { references: [randomUUID()] }),
    'vn-customs',
    422,
    'schema-invalid',
    undefined,
    'supersedes not in references',
  );
  await refused(
    withdrawal(n.id, { tlp: 'GREEN' }),
    'vn-customs',
    403,
    'policy-denied',
    /at least as restricted/,
    'a laxer TLP than the original',
  );
  await refused(
    withdrawal(n.id, { operation: 'aircop' }),
    'vn-customs',
    403,
    'policy-denied',
    /operation of the notice it supersedes/,
    'another operation',
  );
  const w = withdrawal(n.id);
  await post(w);
  await refused(
    withdrawal(w['id']),
    'vn-customs',
    403,
    'policy-denied',
    /cannot itself be superseded/,
    'a withdrawal of a withdrawal',
  );
  const bad = withdrawal(n.id);
  bad['body'].supersedes = 'not-a-uuid';
  await refused(bad, 'vn-customs', 422, 'schema-invalid', undefined, 'supersedes not a uuid');

  t.equal(await logSize(), before + 1, 'only the one accepted withdrawal was logged');
  await sleep(300); // a wrong delivery would show up here
  for (const agency of EVERYONE) {
    const got = (await client(agency).pull({ limit: 500 })).deliveries.filter((d) => refusedIds.includes(d.notice_id));
    t.equal(got.length, 0, `${agency}: no refused withdrawal delivered`);
  }
});

t.test('lookup: without a checkpointer the whole log is scanned, bounded; pure rules', async (t) => {
  const nats2 = await startTestNats(t);
  const g2 = await startTestGateway(t, nats2.url, { checkpointer: false, leaseTtlSeconds: 3, routerAckWaitSeconds: 2 });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const n = original({ summary: `lookup ${i}` });
    const res = await send(g2, n, 'vn-customs');
    t.equal(res.status, 202);
    ids.push(n.id);
  }
  await waitFor(async () => await deliveredTo(g2.gw.bus, ids[2]!), 'the routing of the last one');
  const found = await findNoticeEntry(g2.gw.bus, ids[2]!);
  t.match(found, {
    kind: 'notice',
    notice_id: ids[2],
    origin: { agency: 'vn-customs' },
    recipients: ['kh-police-adp', 'th-customs'],
  });
  t.equal(await findNoticeEntry(g2.gw.bus, randomUUID()), undefined, 'an unknown id');
  t.equal(await findNoticeEntry(g2.gw.bus, 'not-a-uuid'), undefined, 'not an id');
  await t.rejects(
    findNoticeEntry(g2.gw.bus, ids[2]!, 2),
    { code: 'unavailable' },
    'a tail longer than the bound is unavailable, not unknown',
  );
  const w = withdrawal(ids[0]!);
  const res = await send(g2, w, 'vn-customs');
  t.equal(res.status, 202, 'a withdrawal is accepted without any checkpoint');
  t.same(res.json['recipients'], ['kh-police-adp', 'th-customs']);

  // Pure rules on a hand-made entry.
  const header = w as unknown as NoticeHeader;
  const entry = (patch: Partial<NoticeLogEntry>): NoticeLogEntry => ({
    ...(found as NoticeLogEntry),
    notice_id: ids[0]!,
    ...patch,
  });
  const registry = g2.gw.registry.snapshot;
  const now = new Date();
  const both = ['kh-police-adp', 'th-customs'];
  t.same(
    evaluateWithdrawal(
      header,
      'vn-customs',
      registry,
      now,
      entry({ recipients: ['th-customs', 'kh-police-adp', 'th-customs'] }),
      both,
    ),
    { recipients: both },
    'sorted, once each',
  );
  t.throws(
    () => evaluateWithdrawal(header, 'vn-customs', registry, now, entry({ notice_id: ids[1]! }), both),
    { code: 'policy-denied' },
    'an entry of another notice',
  );
  t.throws(
    () => evaluateWithdrawal(header, 'vn-customs', registry, now, entry({ recipients: [] }), both),
    { code: 'policy-denied' },
    'no recipient',
  );
  t.throws(
    () => evaluateWithdrawal(header, 'vn-customs', registry, now, undefined, both),
    { code: 'policy-denied' },
    'no entry',
  );

  // Whom it goes to: only agencies both delivered the original and named by its entry.
  const e = entry({});
  t.same(
    withdrawalRecipients(e, ['th-customs', 'la-customs', 'gb-border-force'], registry, now),
    ['th-customs'],
    'a record naming others does not widen the entry',
  );
  t.same(
    withdrawalRecipients(e, ['kh-police-adp', 'th-customs', 'vn-customs'], registry, now),
    both,
    'never the origin',
  );
  t.throws(
    () => withdrawalRecipients(e, undefined, registry, now),
    { code: 'policy-denied', publicDetail: /no record of who received/ },
    'no record',
  );
  t.throws(
    () => withdrawalRecipients(e, [], registry, now),
    { code: 'policy-denied', publicDetail: /no recipient/ },
    'delivered to nobody',
  );
  const gone = { agency: () => undefined, operation: registry.operation.bind(registry) } as unknown as typeof registry;
  t.throws(
    () => withdrawalRecipients(e, both, gone, now),
    { code: 'policy-denied', publicDetail: /can receive now/ },
    'nobody left who can receive',
  );

  // The router's plan: a withdrawal is not held to membership; any other notice is.
  const outsider = { ...e, recipients: ['gb-border-force'] };
  t.same(
    planDeliveries(outsider, registry, now).skipped,
    [{ agency: 'gb-border-force', reason: 'not-member' }],
    'a notice: members only',
  );
  t.same(
    planDeliveries({ ...outsider, type: 'withdrawal' }, registry, now).deliveries.map((d) => d.agency),
    ['gb-border-force'],
    'a withdrawal: whoever the entry names',
  );

  // The record of whom a notice was delivered to.
  t.same(await deliveredOriginal(g2.gw.bus, e), both, 'the routed original');
  const fresh = { notice_id: randomUUID(), received_at: new Date().toISOString() };
  await t.rejects(deliveredOriginal(g2.gw.bus, fresh, 150), { code: 'unavailable' }, 'not routed yet: 503, retry');
  const ancient = { notice_id: randomUUID(), received_at: '2020-01-01T00:00:00Z' };
  t.equal(await deliveredOriginal(g2.gw.bus, ancient), undefined, 'past any routing and no record: none will come');
  await recordDelivered(g2.gw.bus, 1, fresh.notice_id, ['th-customs']);
  await recordDelivered(g2.gw.bus, 1, fresh.notice_id, ['kh-police-adp']);
  t.same(
    await deliveredTo(g2.gw.bus, fresh.notice_id),
    both,
    'a routing attempt after a redelivery adds to the record',
  );
  await recordDelivered(g2.gw.bus, 1, ancient.notice_id, ['th-customs']);
  t.same(await deliveredTo(g2.gw.bus, ancient.notice_id), ['th-customs'], 'a redelivered notice without a record');
  await (await g2.gw.bus.kv(DELIVERED_BUCKET)).put(ancient.notice_id, new TextEncoder().encode('["TH customs"]'));
  await t.rejects(
    deliveredTo(g2.gw.bus, ancient.notice_id),
    { code: 'unavailable' },
    'a malformed record is not believed',
  );
  const nats3 = await startTestNats(t);
  const g3 = await startTestGateway(t, nats3.url, { checkpointer: false });
  t.equal(await deliveredTo(g3.gw.bus, randomUUID()), undefined, 'no router has recorded anything yet');
});
