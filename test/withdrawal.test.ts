import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { InboxClient } from '../broker/delivery/client.js';
import { findNoticeEntry } from '../broker/ingest/withdrawal-lookup.js';
import { evaluateWithdrawal, NOT_YOURS } from '../broker/ingest/withdrawal-policy.js';
import type { NoticeHeader } from '../broker/ingest/notice.js';
import { INDEX_BUCKET } from '../broker/log/checkpoint-store.js';
import type { NoticeLogEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import type { InboxDelivery } from '../broker/routing/inbox.js';
import { sampleNotice, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { inboxClients } from './helpers/inbox.js';
import { sleep, waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
// A short checkpoint interval, so that one case can wait for the log-index to hold the original.
const g = await startTestGateway(t, nats.url, { leaseTtlSeconds: 3, routerAckWaitSeconds: 2, checkpointIntervalMs: 300 });
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;

const EVERYONE = ['th-customs', 'kh-police-adp', 'la-customs', 'cn-customs', 'vn-c04', 'vn-customs', 'gb-border-force', 'fr-douane'];

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
async function post(notice: Record<string, unknown>, from = 'vn-customs') {
  const res = await send(g, notice, from);
  if (res.status !== 202) throw new Error(`post refused: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}

const original = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', { operation: 'mekong-dragon-6', origin: { country: 'VN', agency: 'vn-customs' }, addressees: ['TH', 'KH'], tlp: 'AMBER', ...patch });

/** A withdrawal of `of`, sent as `from` (origin set to match the sender, so only the withdrawal rules can refuse it). */
function withdrawal(of: string, patch: Record<string, unknown> = {}, body: Record<string, unknown> = {}): Record<string, any> {
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
      t.match(got[0], { type: 'withdrawal', operation: 'mekong-dragon-6', origin: { agency: 'vn-customs', country: 'VN' }, log_index: receipt['log_index'] });
      const opened = await client(agency).open(got[0]!);
      t.same(opened.notice, w, `${agency} decrypts it and verifies vn-customs' signature`);
      t.equal(opened.signerKid, 'vn-customs-sig-1');
    } else {
      t.equal(got.length, 0, `${agency} gets nothing`);
    }
  }
}

t.test('a withdrawal sent at once (before the log-index has the original) reaches every earlier recipient and nobody else', async (t) => {
  const n = original();
  const first = await post(n);
  t.same(first['recipients'], ['kh-police-adp', 'th-customs']);
  // Addressed to la-customs on purpose: a withdrawal goes where the original went, not to its own addressees.
  const w = withdrawal(n.id, { addressees: ['la-customs'] }, { action: 'withdraw', reason: 'Sai số container; báo cáo không còn giá trị.', correction: undefined });
  delete w['body'].correction;
  const receipt = await post(w);
  await checkReached(t, w, receipt, ['kh-police-adp', 'th-customs']);
  await routed(n.id, 2);
  t.equal((await deliveriesOf('th-customs', n.id)).length, 1, 'the original is still there, once');
});

t.test('a correction of a notice already in the log-index; TLP:RED named only', async (t) => {
  const n = original({ addressees: ['th-customs'], tlp: 'RED' });
  await post(n);
  const kv = await g.gw.bus.kv(INDEX_BUCKET);
  await waitFor(async () => ((await kv.get(n.id))?.operation === 'PUT' ? true : undefined), 'the checkpointer to index the original', 15_000);
  const w = withdrawal(n.id, { tlp: 'RED', addressees: ['th-customs'] });
  const receipt = await post(w);
  await checkReached(t, w, receipt, ['th-customs']);
});

t.test('only the origin agency may withdraw a notice; unknown notices are refused; nothing is logged', async (t) => {
  const n = original();
  await post(n);
  await routed(n.id, 2);
  const before = await logSize();

  const refusedIds: unknown[] = [];
  const refused = async (notice: Record<string, unknown>, from: string, status: number, code: string, detail: RegExp | string | undefined, what: string) => {
    refusedIds.push(notice['id']);
    const res = await send(g, notice, from);
    t.equal(res.status, status, `${what}: ${status}`);
    t.equal(res.json['code'] ?? res.json['type']?.split('/').pop(), code, `${what}: ${code}`);
    if (detail !== undefined) t.match(res.json['detail'], detail, `${what}: says why`);
    return res;
  };
  const asTh = (patch: Record<string, unknown> = {}) => withdrawal(n.id, { origin: { country: 'TH', agency: 'th-customs' }, ...patch });
  const byTh = await refused(asTh(), 'th-customs', 403, 'policy-denied', NOT_YOURS, 'a recipient withdraws the origin notice');
  await refused(withdrawal(n.id, { origin: { country: 'LA', agency: 'la-customs' } }), 'la-customs', 403, 'policy-denied', NOT_YOURS, 'another member withdraws it');
  await refused(withdrawal(n.id, { origin: { country: 'GB', agency: 'gb-border-force' } }), 'gb-border-force', 403, 'policy-denied', /not a member of the operation/, 'an agency outside the operation');
  const unknown = await refused(withdrawal(randomUUID()), 'vn-customs', 403, 'policy-denied', NOT_YOURS, 'an unknown notice id');
  t.equal(unknown.json['detail'], byTh.json['detail'], 'unknown and not-yours read the same (no probing)');
  // Someone else's notice, withdrawn in the name of its origin but signed by another agency: the usual origin check.
  await refused(withdrawal(n.id), 'th-customs', 403, 'policy-denied', /origin\.agency/, 'signed by another agency in the origin name');

  await refused(withdrawal(n.id, { references: [randomUUID()] }), 'vn-customs', 422, 'schema-invalid', undefined, 'supersedes not in references');
  await refused(withdrawal(n.id, { tlp: 'GREEN' }), 'vn-customs', 403, 'policy-denied', /at least as restricted/, 'a laxer TLP than the original');
  await refused(withdrawal(n.id, { operation: 'aircop' }), 'vn-customs', 403, 'policy-denied', /operation of the notice it supersedes/, 'another operation');
  const w = withdrawal(n.id);
  await post(w);
  await refused(withdrawal(w['id']), 'vn-customs', 403, 'policy-denied', /cannot itself be superseded/, 'a withdrawal of a withdrawal');
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
  const found = await findNoticeEntry(g2.gw.bus, ids[2]!);
  t.match(found, { kind: 'notice', notice_id: ids[2], origin: { agency: 'vn-customs' }, recipients: ['kh-police-adp', 'th-customs'] });
  t.equal(await findNoticeEntry(g2.gw.bus, randomUUID()), undefined, 'an unknown id');
  t.equal(await findNoticeEntry(g2.gw.bus, 'not-a-uuid'), undefined, 'not an id');
  await t.rejects(findNoticeEntry(g2.gw.bus, ids[2]!, 2), { code: 'unavailable' }, 'a tail longer than the bound is unavailable, not unknown');
  const w = withdrawal(ids[0]!);
  const res = await send(g2, w, 'vn-customs');
  t.equal(res.status, 202, 'a withdrawal is accepted without any checkpoint');
  t.same(res.json['recipients'], ['kh-police-adp', 'th-customs']);

  // Pure rules on a hand-made entry.
  const header = w as unknown as NoticeHeader;
  const entry = (patch: Partial<NoticeLogEntry>): NoticeLogEntry => ({ ...(found as NoticeLogEntry), notice_id: ids[0]!, ...patch });
  const registry = g2.gw.registry.snapshot;
  const now = new Date();
  t.same(evaluateWithdrawal(header, 'vn-customs', registry, now, entry({ recipients: ['th-customs', 'kh-police-adp', 'th-customs'] })), { recipients: ['kh-police-adp', 'th-customs'] }, 'sorted, once each');
  t.throws(() => evaluateWithdrawal(header, 'vn-customs', registry, now, entry({ notice_id: ids[1]! })), { code: 'policy-denied' }, 'an entry of another notice');
  t.throws(() => evaluateWithdrawal(header, 'vn-customs', registry, now, entry({ recipients: [] })), { code: 'policy-denied' }, 'no recipient');
  t.throws(() => evaluateWithdrawal(header, 'vn-customs', registry, now, undefined), { code: 'policy-denied' }, 'no entry');
});
