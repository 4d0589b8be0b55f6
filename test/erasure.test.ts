/**
 * Erasure (issue 23, item 2) on a real nats-server and a real gateway: a notice
 * delivered, acked, withdrawn, proven and dead-lettered, then erased by an
 * operator. Its key is a tombstone, NOTICES, DELIVERIES and DEADLETTER no
 * longer hold it, each recipient finds a broker-signed erasure record instead,
 * the audit names the erasure, the proof and the origin's receipt still
 * verify, and its id stays taken. A second erase is the same event.
 */
import t from 'tap';
import { createHash, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { signAck } from '../broker/acks/read-receipt.js';
import { erasureEventId, openErasureRecord } from '../broker/admin/erasure-record.js';
import { openRegistryEvent } from '../broker/admin/registry-event.js';
import type { StoredMessage } from '../broker/core/store-port.js';
import { verifyReceipt } from '../broker/ingest/notice-receipt.js';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { CheckpointVerifier } from '../broker/log/checkpoint.js';
import { decodeEntry } from '../broker/log/entry.js';
import { leafHash, verifyInclusion } from '../broker/log/merkle.js';
import { STREAMS } from '../broker/nats/streams.js';
import { park } from '../broker/routing/deadletter.js';
import { DELIVERY_HEADERS } from '../broker/routing/plan.js';
import { destroyNoticeKey, isErased, readNoticeKey } from '../broker/vault/notice-keys.js';
import { KeyAdmin } from '../broker/admin/key-admin.js';
import { createLogger } from '../broker/core/logger.js';
import { runCli } from './helpers/cli.js';
import { verifyWebhook } from '../adapters/webhook/index.js';
import { webhookConsumerReady, webhookReceiver } from './helpers/webhook-receiver.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { inboxClients } from './helpers/inbox.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { checkpointIntervalMs: 300, rateLimitMax: 100_000 });
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;
const client = inboxClients(g, url);
const OPERATOR = 'hub-operator';
const bus = g.gw.bus;

const bearer = async (agency: string) =>
  `Bearer ${await makeClientAssertion(agency, g.creds(agency).signing, g.config.brokerId)}`;
async function call(method: 'GET' | 'POST', path: string, as: string, body?: string, contentType = 'application/json') {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: await bearer(as), ...(body === undefined ? {} : { 'content-type': contentType }) },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  let json: Record<string, any>;
  try {
    json = JSON.parse(text) as Record<string, any>;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}
const erase = (id: string, reason: unknown, as = OPERATOR) =>
  call('POST', `/v1/admin/notices/${id}/erase`, as, JSON.stringify({ reason }));

/** Every message of `stream` on `subject` that concerns the notice (by Msg-Id or the delivery's notice-id header). */
async function held(stream: string, subject: string, noticeId: string): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(stream, seq, subject);
    if (!m) return out;
    if (m.header?.get('Nats-Msg-Id') === noticeId || m.header?.get(DELIVERY_HEADERS.noticeId) === noticeId) out.push(m);
    seq = m.seq + 1;
  }
}

const original = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
    tlp: 'AMBER',
    ...patch,
  });
async function post(notice: Record<string, unknown>) {
  const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
  if (res.status !== 202) throw new Error(`post refused: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
}
const deliveryOf = (agency: string, noticeId: string) =>
  waitFor(
    async () =>
      (await client(agency).pull({ limit: 500 })).deliveries.find((d) => d.notice_id === noticeId && !d.erased),
    `${agency}'s delivery of ${noticeId}`,
  );
const proofOf = (noticeId: string) =>
  waitFor(async () => {
    const p = await call('GET', `/v1/notices/${noticeId}/proof`, 'vn-customs');
    return p.status === 200 ? p.json : undefined;
  }, `a proof of ${noticeId}`);
function proofVerifies(p: Record<string, any>): boolean {
  const v = new CheckpointVerifier(g.config.brokerId, g.jwks.keys).verify(p.checkpoint.note);
  return verifyInclusion(
    leafHash(Buffer.from(p.entry, 'base64url')),
    p.index,
    v.checkpoint.treeSize,
    p.proof.map((h: string) => Buffer.from(h, 'hex')),
    v.checkpoint.rootHash,
  );
}

// kh-police-adp takes its deliveries by webhook too.
const hook = await webhookReceiver(t);
await g.gw.registry.putAgency({ ...g.gw.registry.snapshot.agency('kh-police-adp')!, webhook: { url: hook.url } });
await webhookConsumerReady(bus, 'kh-police-adp');

// The notice's life before its erasure: delivered to th-customs and kh-police-adp, acked, withdrawn, proven, dead-lettered.
const n = original();
const nSealed = (await g.seal(n, 'vn-customs')).jwe;
const posted = (await g.post(nSealed)).json;
const receipt = posted['receipt'] as string;
const thDelivery = await deliveryOf('th-customs', n.id);
await deliveryOf('kh-police-adp', n.id);
const opened = await client('th-customs').open(thDelivery);
const ack = await signAck(
  {
    notice_id: n.id,
    cursor: thDelivery.cursor,
    sha256: createHash('sha256').update(opened.jws).digest('hex'),
    acked_at: new Date().toISOString(),
  },
  g.creds('th-customs').signing,
);
const acked = await call('POST', '/v1/inbox/ack', 'th-customs', ack, 'application/jose');
const w = sampleNotice('withdrawal', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['TH', 'KH'],
  tlp: 'AMBER',
  references: [n.id],
});
w['body'] = { ...w['body'], supersedes: n.id };
const withdrawn = await g.post((await g.seal(w, 'vn-customs')).jwe);
const proofBefore = await proofOf(n.id);
// A webhook delivery to kh-police-adp that failed every try, parked as the webhook deliverer parks it.
const khCopy = (await held(STREAMS.deliveries, 'deliveries.kh-police-adp.>', n.id))[0]!;
await park(bus, {
  agency: 'kh-police-adp',
  key: `${n.id}:kh-police-adp`,
  data: khCopy.data,
  headers: khCopy.header,
  cursor: khCopy.seq,
  attempts: 5,
  lastError: 'connection refused',
  at: new Date(),
});
// A bystander notice, which the erasure must leave alone.
const other = original();
await post(other);
await deliveryOf('th-customs', other.id);

const reason = 'Hết hạn lưu giữ — انتهت مدة الاحتفاظ — 保存期限切れ';
let erased: Record<string, any>;

t.test('before: the notice was delivered, acked, withdrawn, proven and dead-lettered', async (t) => {
  t.equal(acked.status, 201, JSON.stringify(acked.json));
  t.equal(withdrawn.status, 202, JSON.stringify(withdrawn.json));
  t.ok(proofVerifies(proofBefore), 'the proof verifies');
  t.equal((await held(STREAMS.notices, 'notices.>', n.id)).length, 1);
  t.equal((await held(STREAMS.deadletter, 'deadletter.webhook.>', n.id)).length, 1);
  // Sealed at rest, the notice has its own wrapped key; before sealing, none. Either way not a tombstone yet.
  const key = await readNoticeKey(bus, n.id);
  t.ok(key === null || !isErased(key), 'its key is not erased yet');
});

t.test('an operator erases it: one broker-signed notice-erased event in the log', async (t) => {
  const r = await erase(n.id, reason);
  t.equal(r.status, 201, JSON.stringify(r.json));
  erased = r.json;
  t.match(r.json, { event_id: erasureEventId(n.id), type: 'notice-erased', duplicate: false });
  const entry = decodeEntry((await bus.getMessage(STREAMS.log, r.json.log_index + 1))!.data);
  t.match(entry, {
    kind: 'registry',
    event: 'notice-erased',
    event_id: r.json.event_id,
    subject: { notice: n.id },
    actor: OPERATOR,
  });
  const { event } = openRegistryEvent(r.json.event, g.jwks.keys);
  t.equal(event.reason, reason, 'the reason is kept byte for byte, in any script');
  t.same(event.actor, { agency: OPERATOR, kid: `${OPERATOR}-sig-1` });
  t.notOk(
    g.logLines.some((l) => l.includes('انتهت') || l.includes('Hết hạn')),
    'the reason is in no log line',
  );
});

t.test('its key is a tombstone and no stream holds its content any more', async (t) => {
  t.same(await readNoticeKey(bus, n.id), {
    v: 1,
    erased_by: erased.event_id,
    erased_at: openRegistryEvent(erased.event, g.jwks.keys).event.at,
  });
  t.same(await held(STREAMS.notices, 'notices.>', n.id), [], 'NOTICES');
  const left = await held(STREAMS.deliveries, 'deliveries.>', n.id);
  t.ok(
    left.every((m) => m.header?.get('Liaison-Erasure') === erased.event_id),
    'DELIVERIES: only the erasure records are left',
  );
  t.same(await held(STREAMS.deadletter, 'deadletter.webhook.>', n.id), [], 'DEADLETTER');
  t.equal((await held(STREAMS.notices, 'notices.>', other.id)).length, 1, 'another notice is untouched');
  t.ok(await deliveryOf('th-customs', other.id), 'and so is its delivery');
});

t.test('each recipient finds a broker-signed erasure record in its inbox, and no content', async (t) => {
  for (const agency of ['th-customs', 'kh-police-adp']) {
    const mine = (await client(agency).pull({ limit: 500 })).deliveries.filter((d) => d.notice_id === n.id);
    t.equal(mine.length, 1, `${agency}: one item for the notice`);
    const d = mine[0]!;
    t.equal(d.jwe, undefined, `${agency}: no content`);
    t.match(d.erased, { event_id: erased.event_id });
    const record = openErasureRecord(d.erased!.record, g.jwks.keys);
    t.same(record, {
      notice_id: n.id,
      event_id: erased.event_id,
      erased_at: d.erased!.erased_at,
      log_index: erased.log_index,
    });
    const forged = d.erased!.record.replace(/\.[^.]+$/, '.' + Buffer.alloc(64).toString('base64url'));
    t.throws(() => openErasureRecord(forged, g.jwks.keys), /does not verify/, 'a forgery is told apart');
    // The SSE stream carries the same record (as do webhooks: one conversion, broker/routing/inbox.ts).
    const abort = new AbortController();
    for await (const e of client(agency).follow({ after: d.cursor - 1 }, abort.signal)) {
      t.match(e, { cursor: d.cursor, erased: { event_id: erased.event_id } }, `${agency}: SSE`);
      abort.abort();
      break;
    }
  }
  // The webhook carries it too, signed by the broker, under an idempotency key of its own.
  const pushed = await waitFor(async () => {
    for (const r of hook.got) {
      const claims = await verifyWebhook(r.body, g.jwks, 'kh-police-adp');
      if (claims.notice_id === n.id && claims.erased) return { claims, headers: r.headers };
    }
    return undefined;
  }, 'the erasure record by webhook');
  t.match(pushed.claims.erased, { event_id: erased.event_id });
  t.equal(pushed.claims.jwe, undefined, 'webhook: no content');
  t.equal(openErasureRecord(pushed.claims.erased!.record, g.jwks.keys).notice_id, n.id);
  t.equal(pushed.headers['idempotency-key'], `${n.id}:kh-police-adp:erased`);
  t.ok(
    hook.got.some((r) => r.headers['idempotency-key'] === `${n.id}:kh-police-adp`),
    'the delivery itself came by webhook before',
  );
  const pulled = await runCli(['inbox', 'pull', '--as', 'th-customs', '--url', url, '--data-dir', g.dataDir]);
  t.match(pulled.stdout, `${n.id} mekong-dragon-6 from vn-customs (VN) ERASED by event ${erased.event_id}`);
  t.match(pulled.stdout, 'broker signature verified', '`liaison inbox pull` verifies the record and says so');
  const la = (await client('la-customs').pull({ limit: 500 })).deliveries.filter((d) => d.notice_id === n.id);
  t.same(la, [], 'an agency that never got the notice gets no record');
});

t.test('the proof, the receipt and the read receipt still verify; the id stays taken', async (t) => {
  t.ok(proofVerifies(proofBefore), 'the proof fetched before');
  const after = await proofOf(n.id);
  t.ok(proofVerifies(after), 'a proof fetched after');
  const claims = await verifyReceipt(receipt, g.jwks);
  t.equal(claims.notice_id, n.id);
  t.equal(claims.sha256, JSON.parse(Buffer.from(after.entry, 'base64url').toString()).sha256);
  const acks = await call('GET', `/v1/notices/${n.id}/acks`, 'vn-customs');
  t.equal(acks.json.acks?.length, 1, 'the read receipt is listed');
  const again = await g.post((await g.seal({ ...n, summary: 'other bytes under the same id' }, 'vn-customs')).jwe);
  t.equal(again.status, 409);
  t.equal(again.json.code, 'duplicate-conflict', 're-posting the id is refused');
  // The same bytes again (a late retry): its key is a tombstone, so it is answered from the log with the original
  // entry, and nothing is stored again.
  const same = await g.post(nSealed);
  t.equal(same.status, 202, JSON.stringify(same.json));
  t.equal(same.json.log_index, posted['log_index'], 'the original entry');
  t.same(await held(STREAMS.notices, 'notices.>', n.id), [], 'the content is not stored again');
});

t.test('audit verify passes and names the erasure, live and from an archive', async (t) => {
  // Live: once a checkpoint covers the erasure event.
  await waitFor(async () => {
    const p = await proofOf(n.id);
    return p.tree_size > erased.log_index ? true : undefined;
  }, 'a checkpoint over the erasure');
  const live = await runCli(['audit', 'verify', '--url', url, '--as', 'hub-auditor', '--data-dir', g.dataDir]);
  t.equal(live.code, 0, live.stdout + live.stderr);
  t.match(live.stdout, `notice ${n.id} erased by event ${erased.event_id} (entry ${erased.log_index})`);
  t.match(live.stdout, 'the log verifies');
  const json = JSON.parse(
    (await runCli(['audit', 'verify', '--url', url, '--as', 'hub-auditor', '--data-dir', g.dataDir, '--json'])).stdout,
  ) as Record<string, any>;
  t.same(json.erasures, [{ notice_id: n.id, event_id: erased.event_id, index: erased.log_index }]);

  // Archive: the content of every other notice is checked; the erased one is erased by its event, not missing.
  const archive = await exportArchive(bus, g.config.brokerId, g.gw.keyring.verificationKeys, g.gw.keyring);
  const report = await auditLogWithOrigins(archiveToAuditInput(JSON.parse(JSON.stringify(archive))));
  t.equal(report.ok, true, JSON.stringify(report.problems));
  t.same(report.erasures, [{ notice_id: n.id, event_id: erased.event_id, index: erased.log_index }]);
  t.equal(report.noticesMissing, 0, 'no notice is missing');
  t.ok(report.noticesChecked >= 2, 'the other notices are checked against their commitments');
  t.ok((report.registryEventsChecked ?? 0) >= 1, 'the erasure event is checked against its entry and the broker key');
});

t.test('a second erase is the same event, and changes nothing', async (t) => {
  const count = async () => (await bus.streamInfo(STREAMS.log))!.messages;
  const before = await count();
  const r = await erase(n.id, 'another reason');
  t.equal(r.status, 200);
  t.match(r.json, { event_id: erased.event_id, log_index: erased.log_index, duplicate: true, event: erased.event });
  t.equal(await count(), before, 'nothing logged');
  const mine = (await client('th-customs').pull({ limit: 500 })).deliveries.filter((d) => d.notice_id === n.id);
  t.equal(mine.length, 1, 'no second erasure record');
});

t.test('an erasure while an audit export runs: the archive reads on to its event', async (t) => {
  const m = original();
  await post(m);
  await deliveryOf('th-customs', m.id);
  // The export reads the log, then the contents: the operator erases m in between.
  let erasedMeanwhile: Record<string, any> | undefined;
  const racing = new Proxy(bus, {
    get(target, prop) {
      if (prop === 'streamInfo')
        return async (stream: string) => {
          if (stream === STREAMS.notices && !erasedMeanwhile) erasedMeanwhile = (await erase(m.id, 'mid-export')).json;
          return target.streamInfo(stream);
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const archive = await exportArchive(racing, g.config.brokerId, g.gw.keyring.verificationKeys, g.gw.keyring);
  t.ok(erasedMeanwhile?.event_id, 'the erasure ran between the two reads');
  const report = await auditLogWithOrigins(archiveToAuditInput(JSON.parse(JSON.stringify(archive))));
  t.equal(report.ok, true, JSON.stringify(report.problems));
  t.match(
    report.erasures.find((e) => e.notice_id === m.id),
    { event_id: erasedMeanwhile!.event_id, index: erasedMeanwhile!.log_index },
    'named as erased by its event, which the archive now holds',
  );
  t.equal(report.noticesMissing, 0, 'not reported as a notice gone without a trace');
});

t.test('an erasure that crashed part-way is finished by asking again', async (t) => {
  const m = original();
  await post(m);
  await deliveryOf('th-customs', m.id);
  // Another instance that logs the event, shreds the key, and dies before purging anything.
  const crashing = new KeyAdmin({
    bus,
    registry: g.gw.registry,
    keyring: g.gw.keyring,
    keyringStore: undefined as never,
    brokerId: g.config.brokerId,
    encryptionKeyGraceSeconds: 0,
    agencyKeyOverlapSeconds: 0,
    logger: createLogger('silent'),
    eraseContent: async (event) => {
      await destroyNoticeKey(bus, m.id, { event_id: event.id, erased_at: event.at });
      throw new Error('crash after the key');
    },
  });
  const failed = await crashing
    .eraseNotice({ agency: OPERATOR, kid: `${OPERATOR}-sig-1` }, m.id, { reason: 'first try' })
    .catch((e: unknown) => e as { code?: string });
  t.equal((failed as { code?: string }).code, 'unavailable', 'the caller is told to retry');
  t.match(await readNoticeKey(bus, m.id), { erased_by: erasureEventId(m.id) });
  t.equal((await held(STREAMS.notices, 'notices.>', m.id)).length, 1, 'half-done: the content is still there');
  const r = await erase(m.id, 'second try');
  t.equal(r.status, 200, JSON.stringify(r.json));
  t.match(r.json, { event_id: erasureEventId(m.id), duplicate: true });
  t.same(await held(STREAMS.notices, 'notices.>', m.id), [], 'the retry finished it');
  const mine = (await client('th-customs').pull({ limit: 500 })).deliveries.filter((d) => d.notice_id === m.id);
  t.equal(mine.length, 1);
  t.ok(mine[0]!.erased, 'the recipient has the erasure record, not the content');
});

t.test('the CLI erases and prints the event id and log index', async (t) => {
  const m = original();
  await post(m);
  await deliveryOf('th-customs', m.id);
  const r = await runCli([
    'admin',
    'erase',
    m.id,
    '--as',
    OPERATOR,
    '--reason',
    'retention',
    '--url',
    url,
    '--data-dir',
    g.dataDir,
  ]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`notice-erased: event ${erasureEventId(m.id)} at log index \\d+`));
  const none = await runCli(['admin', 'erase', m.id, '--as', OPERATOR, '--url', url, '--data-dir', g.dataDir]);
  t.equal(none.code, 2, 'no --reason: a usage error');
});

t.test('refusals: a non-operator, an unknown notice, a bad reason, hostile input', async (t) => {
  const m = original();
  await post(m);
  const byAgency = await erase(m.id, 'mine', 'vn-customs');
  t.equal(byAgency.status, 403, 'the origin itself may not erase');
  t.equal(byAgency.json.code, 'forbidden');
  const unknown = await erase(randomUUID(), 'x');
  t.equal(unknown.status, 404);
  t.equal(unknown.json.code, 'notice-unknown');
  const cases: [string, string][] = [
    [`/v1/admin/notices/not-a-uuid/erase`, JSON.stringify({ reason: 'x' })],
    [`/v1/admin/notices/${m.id.toUpperCase()}/erase`, JSON.stringify({ reason: 'x' })],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({})],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({ reason: '' })],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({ reason: '   ' })],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({ reason: 'x'.repeat(501) })],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({ reason: 42 })],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({ reason: 'a\u0000b' })],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({ reason: 'a\u202eb' })],
    [`/v1/admin/notices/${m.id}/erase`, '{"reason":"\\ud800"}'],
    [`/v1/admin/notices/${m.id}/erase`, JSON.stringify({ reason: 'x', id: randomUUID() })],
    [`/v1/admin/notices/${m.id}/erase`, '{"reason":"x","reason":"y"}'],
    [`/v1/admin/notices/${m.id}/erase`, '{"reason":"x"'],
    [`/v1/admin/notices/${m.id}/erase`, '{"__proto__":{"reason":"x"},"reason":"x"}'],
  ];
  for (const [path, body] of cases) {
    const r = await call('POST', path, OPERATOR, body);
    t.equal(r.status, 400, `${path} ${body.slice(0, 40)}: ${JSON.stringify(r.json)}`);
    t.equal(r.json.code, 'bad-request');
  }
  t.same(await held(STREAMS.notices, 'notices.>', m.id).then((x) => x.length), 1, 'nothing was erased');
});
