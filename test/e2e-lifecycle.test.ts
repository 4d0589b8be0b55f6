/**
 * An end-to-end notice (docs/end-to-end.md) through its whole life on a real
 * nats-server and the real gateway: delivered (la-customs by webhook, the
 * envelope bytes unchanged, opened by its client), read-receipted, withdrawn
 * with `liaison notice withdraw` (end to end too: no stream and no log line
 * holds its reason), proven, complained about, then erased: the
 * inboxes show the erasure, NOTICES and DELIVERIES no longer hold the
 * envelope, the complaint is shredded with it, and the proof, the audit (which
 * names the erasure event) and the origin's receipt still verify.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import {
  openEndToEnd,
  recipientKeys,
  sealEndToEnd,
  type OperationDirectory,
} from '../broker/agency-client/end-to-end.js';
import { signAck } from '../broker/acks/read-receipt.js';
import { openErasureRecord } from '../broker/admin/erasure-record.js';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { sha256Hex } from '../broker/core/sha256.js';
import type { StoredMessage } from '../broker/core/store-port.js';
import { verifyReceipt } from '../broker/ingest/notice-receipt.js';
import { CheckpointVerifier } from '../broker/log/checkpoint.js';
import { leafHash, verifyInclusion } from '../broker/log/merkle.js';
import { STREAMS } from '../broker/nats/streams.js';
import { DELIVERY_HEADERS } from '../broker/routing/plan.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import { verifyWebhook } from '../adapters/webhook/index.js';
import { runCli } from './helpers/cli.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { inboxClients } from './helpers/inbox.js';
import { scanStreams } from './helpers/marker-scan.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';
import { webhookConsumerReady, webhookReceiver } from './helpers/webhook-receiver.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  leaseTtlSeconds: 3,
  routerAckWaitSeconds: 2,
  checkpointIntervalMs: 200,
  checkpointEveryEntries: 1,
  rateLimitMax: 100_000,
});
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;
const bus = g.gw.bus;
const client = inboxClients(g, url);
const validator = createNoticeValidator();
const E2E = 'application/liaison-e2e+json';
/** In the withdrawal's reason: the recipients read it, the hub must not. */
const MARKER = `E2E-WITHDRAWAL-REASON-${randomBytes(6).toString('hex')}`;

async function call(method: 'GET' | 'POST', path: string, as: string, body?: string, type = 'application/json') {
  const token = await makeClientAssertion(as, g.creds(as).signing, g.config.brokerId);
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': type }) },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}
async function held(stream: string, subject: string, noticeId: string): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(stream, seq, subject);
    if (!m) return out;
    if (m.header?.get('Nats-Msg-Id') === noticeId || m.header?.get(DELIVERY_HEADERS.noticeId) === noticeId) out.push(m);
    seq = m.seq + 1;
  }
}
const inbox = async (agency: string) => (await client(agency).pull({ limit: 500 })).deliveries;
const proofOf = (noticeId: string, minSize = 0) =>
  waitFor(async () => {
    const p = await call('GET', `/v1/notices/${noticeId}/proof`, 'vn-customs');
    return p.status === 200 && p.json.tree_size > minSize ? p.json : undefined;
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

// la-customs takes its deliveries by webhook.
const hook = await webhookReceiver(t);
await g.gw.registry.putAgency({ ...g.gw.registry.snapshot.agency('la-customs')!, webhook: { url: hook.url } });
await webhookConsumerReady(bus, 'la-customs');

const notice = sampleNotice('seizure-report', {
  operation: 'mekong-sealed',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['th-customs', 'la-customs'],
  tlp: 'RED',
  summary: 'E2E-LIFECYCLE pangolin scales in a reefer',
});
const directory = (await call('GET', '/v1/operations/mekong-sealed/members', 'vn-customs')).json as OperationDirectory;
const sealed = await sealEndToEnd(notice, g.creds('vn-customs').signing, recipientKeys(notice, directory));
const posted = await g.post(sealed.envelope, E2E);
const originKeys = (agency: string) => client('th-customs').agencyKeys(agency);

t.test('delivered: by pull, and by webhook with the envelope unchanged; each recipient opens it', async (t) => {
  t.equal(posted.status, 202, JSON.stringify(posted.json));
  const th = await waitFor(async () => (await inbox('th-customs')).find((d) => d.notice_id === notice.id), 'th');
  t.equal(th.e2e, sealed.envelope, 'pulled: the envelope as posted');
  t.same((await client('th-customs').open(th)).notice, notice, 'th-customs opens it');
  const pushed = await waitFor(async () => {
    for (const r of hook.got) {
      const claims = await verifyWebhook(r.body, g.jwks, 'la-customs');
      if (claims.notice_id === notice.id && !claims.erased) return claims;
    }
    return undefined;
  }, 'the webhook POST');
  t.equal(pushed.e2e, sealed.envelope, 'webhook: the envelope bytes unchanged, under the broker signature');
  const opened = await openEndToEnd(pushed, g.creds('la-customs').encryption, originKeys, validator);
  t.same(opened.notice, notice, 'la-customs opens the webhook delivery');
});

let ackIndex = 0;
t.test('read-receipted, withdrawn, proven, complained about', async (t) => {
  const d = (await inbox('th-customs')).find((x) => x.notice_id === notice.id)!;
  const ack = await signAck(
    {
      notice_id: notice.id,
      cursor: d.cursor,
      sha256: sha256Hex(Buffer.from(d.e2e!, 'utf8')),
      acked_at: new Date().toISOString(),
    },
    g.creds('th-customs').signing,
  );
  const acked = await call('POST', '/v1/inbox/ack', 'th-customs', ack, 'application/jose');
  t.equal(acked.status, 201, JSON.stringify(acked.json));
  ackIndex = acked.json.log_index;

  const w = await runCli([
    'notice',
    'withdraw',
    notice.id,
    '--as',
    'vn-customs',
    '--reason',
    `wrong container ${MARKER}`,
    '--url',
    url,
    '--data-dir',
    g.dataDir,
    '--json',
  ]);
  t.equal(w.code, 0, w.stderr);
  const withdrawalId = JSON.parse(w.stdout).notice_id as string;
  t.match(w.stderr, 'is end to end: sealed for la-customs, th-customs', 'the CLI seals the withdrawal end to end');
  for (const agency of ['th-customs', 'la-customs']) {
    const wd = await waitFor(
      async () => (await inbox(agency)).find((x) => x.type === 'withdrawal' && x.origin.agency === 'vn-customs'),
      `${agency}'s withdrawal`,
    );
    t.type(wd.e2e, 'string', `${agency} gets the withdrawal as an end-to-end envelope`);
    const opened = await client(agency).open(wd);
    t.equal((opened.notice as any).body.supersedes, notice.id, `${agency} sees the withdrawal of the notice`);
    t.match((opened.notice as any).body.reason, MARKER, `${agency} reads the reason`);
  }
  const logged = JSON.parse(Buffer.from((await proofOf(withdrawalId)).entry, 'base64url').toString('utf8'));
  t.equal(logged.format, 'jose-e2e', 'the log records the withdrawal as stored in an e2e envelope');
  const scan = await scanStreams(bus.jsm, [MARKER]);
  t.ok(scan.messages > 10, `${scan.messages} messages scanned`);
  t.same(scan.found, [], 'no stream holds the reason');
  t.notOk(
    g.logLines.some((l) => l.includes(MARKER)),
    "the gateway's log lines do not hold the reason",
  );

  const filed = await client('th-customs').fileComplaint({
    noticeId: notice.id,
    reason: 'other',
    detail: 'E2E-LIFECYCLE',
  });
  t.equal(filed.duplicate, false, 'a complaint is recorded');
  t.equal((await call('GET', `/v1/notices/${notice.id}/complaints`, 'vn-customs')).status, 200);
  t.ok(proofVerifies(await proofOf(notice.id, ackIndex)), 'the inclusion proof verifies');
});

let erased: Record<string, any> = {};
t.test('erased: inboxes show it, the envelope is gone, the log, proofs, audit and receipt still verify', async (t) => {
  const before = await proofOf(notice.id);
  const r = await call('POST', `/v1/admin/notices/${notice.id}/erase`, 'hub-operator', JSON.stringify({ reason: 'x' }));
  t.equal(r.status, 201, JSON.stringify(r.json));
  erased = r.json;
  t.same(await held(STREAMS.notices, 'notices.>', notice.id), [], 'NOTICES holds no envelope');
  const left = await held(STREAMS.deliveries, 'deliveries.>', notice.id);
  t.ok(
    left.length > 0 && left.every((m) => m.header?.get('Liaison-Erasure') === erased.event_id),
    'DELIVERIES: records only',
  );
  for (const agency of ['th-customs', 'la-customs']) {
    const mine = (await inbox(agency)).filter((d) => d.notice_id === notice.id);
    t.equal(mine.length, 1, `${agency}: one item`);
    t.equal(mine[0]!.e2e, undefined, `${agency}: no envelope`);
    t.equal(openErasureRecord(mine[0]!.erased!.record, g.jwks.keys).event_id, erased.event_id, `${agency}: erased`);
  }
  t.equal((await call('GET', `/v1/notices/${notice.id}/complaints`, 'vn-customs')).status, 404, 'complaint shredded');
  t.equal((await call('GET', `/v1/notices/${notice.id}/acks`, 'vn-customs')).json.acks?.length, 1, 'receipt kept');

  t.ok(proofVerifies(before), 'the proof fetched before still verifies');
  const after = await proofOf(notice.id, erased.log_index);
  t.ok(proofVerifies(after), 'a proof fetched after verifies');
  const claims = await verifyReceipt(posted.json.receipt, g.jwks);
  t.equal(claims.notice_id, notice.id, "the origin's receipt verifies");
  t.equal(claims.sha256, sha256Hex(Buffer.from(sealed.envelope, 'utf8')));

  const live = await runCli(['audit', 'verify', '--url', url, '--as', 'hub-auditor', '--data-dir', g.dataDir]);
  t.equal(live.code, 0, live.stdout + live.stderr);
  t.match(live.stdout, `notice ${notice.id} erased by event ${erased.event_id} (entry ${erased.log_index})`);
  const archive = await exportArchive(bus, g.config.brokerId, g.gw.keyring.verificationKeys, g.gw.keyring);
  const report = await auditLogWithOrigins(archiveToAuditInput(JSON.parse(JSON.stringify(archive))));
  t.same(report.problems, [], 'the archive verifies');
  t.same(report.erasures, [{ notice_id: notice.id, event_id: erased.event_id, index: erased.log_index }]);
});
