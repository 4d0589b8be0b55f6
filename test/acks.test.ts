import t from 'tap';
import { waitFor as waitUntil } from './helpers/wait.js';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { signAck, verifyAck, ACK_TYP } from '../broker/acks/read-receipt.js';
import { decodeEntry, encodeEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import { exportArchive } from '../broker/audit/export.js';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { auditLog } from '../broker/audit/verify.js';
import { forgeJws } from './helpers/forge.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { agencyRequests, inboxClients } from './helpers/inbox.js';
import { startTestNats } from './helpers/nats.js';

t.setTimeout(120_000);
/** These tests wait up to 15 s for webhook retries and checkpoints. */
const waitFor = <T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000) =>
  waitUntil(fn, what, ms);

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  leaseTtlSeconds: 3,
  routerAckWaitSeconds: 2,
  checkpointIntervalMs: 200,
  checkpointEveryEntries: 1,
});
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;
const client = inboxClients(g, url);
const requests = agencyRequests(g, url);
const postAck = (agency: string, jws: string) => requests.postJose(agency, '/v1/inbox/ack', jws);
const listAcks = (agency: string, id: string) => requests.get(agency, `/v1/notices/${id}/acks`);

const notice = sampleNotice('seizure-report', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['TH', 'KH'],
  tlp: 'AMBER',
});
const posted = await g.post((await g.seal(notice, 'vn-customs')).jwe);
t.equal(posted.status, 202);
const delivery = async (agency: string) =>
  waitFor(
    async () => (await client(agency).pull({ limit: 100 })).deliveries.find((d) => d.notice_id === notice.id),
    `${agency}'s delivery`,
  );

t.test('a signed read receipt is logged, verifies with the recipient key, and the sender lists it', async (t) => {
  const d = await delivery('th-customs');
  const opened = await client('th-customs').open(d);
  const sha256 = createHash('sha256').update(opened.jws).digest('hex');
  const ack = await signAck(
    { notice_id: notice.id, cursor: d.cursor, sha256, acked_at: new Date().toISOString() },
    g.creds('th-customs').signing,
  );

  const first = await postAck('th-customs', ack);
  t.equal(first.status, 201, JSON.stringify(first.json));
  t.match(first.json, { notice_id: notice.id, agency: 'th-customs', duplicate: false });
  const again = await postAck('th-customs', ack);
  t.equal(again.status, 200, 'the same receipt again: idempotent');
  t.same(again.json, { ...first.json, duplicate: true }, 'answered with the first');
  const later = await signAck(
    { notice_id: notice.id, cursor: d.cursor, sha256, acked_at: new Date(Date.now() + 1000).toISOString() },
    g.creds('th-customs').signing,
  );
  const second = await postAck('th-customs', later);
  t.equal(second.status, 200, 'a second, different receipt of the same notice: the first stands');
  t.equal(second.json.log_index, first.json.log_index);

  // The log entry.
  const m = await g.gw.bus.getMessage(STREAMS.log, first.json.log_index + 1);
  t.ok(m, 'in LOG at the index answered');
  t.equal(m!.subject, 'log.ack');
  const entry = decodeEntry(m!.data) as unknown as Record<string, unknown>;
  t.same(Object.keys(entry).sort(), [
    'acked_at',
    'agency',
    'kind',
    'notice_id',
    'received_at',
    'sha256',
    'signer_kid',
    'v',
  ]);
  t.match(entry, {
    kind: 'ack',
    notice_id: notice.id,
    agency: 'th-customs',
    signer_kid: 'th-customs-sig-1',
    sha256: createHash('sha256').update(ack).digest('hex'),
  });
  t.same(Buffer.from(encodeEntry(entry as never)), Buffer.from(m!.data), 'canonical JSON');
  const acksInLog = [];
  const info = await g.gw.bus.jsm.streams.info(STREAMS.log);
  for (let s = 1; s <= info.state.last_seq; s++)
    if ((await g.gw.bus.getMessage(STREAMS.log, s))?.subject === 'log.ack') acksInLog.push(s);
  t.equal(acksInLog.length, 1, 'logged once');

  // The sender lists it, and anyone verifies it with the recipient's key.
  const listed = await listAcks('vn-customs', notice.id);
  t.equal(listed.status, 200);
  t.equal(listed.json.acks.length, 1);
  const a = listed.json.acks[0];
  t.equal(a.ack, ack, 'the receipt exactly as signed');
  t.equal(a.sha256, entry.sha256, 'matching its log entry');
  const verified = await verifyAck(a.ack, await client('vn-customs').agencyKeys('th-customs'), new Date(a.received_at));
  t.same(
    verified.claims,
    { notice_id: notice.id, cursor: d.cursor, sha256, acked_at: a.acked_at },
    "verifies with th-customs' key",
  );
  await t.rejects(
    verifyAck(a.ack, await client('vn-customs').agencyKeys('kh-police-adp'), new Date()),
    { message: 'the read receipt is not signed by a key of this agency' },
    'not with another agency key',
  );

  for (const other of ['kh-police-adp', 'la-customs', 'th-customs']) {
    const r = await listAcks(other, notice.id);
    t.equal(r.status, 404, `${other} (not the sender) cannot list them`);
    t.equal(r.json.code, 'not-found');
  }

  // Auditors: the log with its ack entry still verifies end to end.
  await waitFor(
    async () => ((g.gw.checkpointer?.status.checkpointSize ?? 0) > first.json.log_index ? true : undefined),
    'a checkpoint over the ack',
  );
  const archive = await exportArchive(g.gw.bus, g.config.brokerId, g.gw.keyring.verificationKeys, g.gw.keyring);
  const report = auditLog(archiveToAuditInput(JSON.parse(JSON.stringify(archive))));
  t.same(report.problems, [], 'audit verify accepts the ack entry');
  t.ok(report.ok);
});

t.test('refused read receipts', async (t) => {
  const th = await delivery('th-customs');
  const kh = await delivery('kh-police-adp');
  const opened = await client('kh-police-adp').open(kh);
  const sha256 = createHash('sha256').update(opened.jws).digest('hex');
  const claims = { notice_id: notice.id, cursor: kh.cursor, sha256, acked_at: new Date().toISOString() };
  const cases: [string, string, string, number, string][] = [
    [
      "another agency's delivery",
      'kh-police-adp',
      await signAck({ ...claims, cursor: th.cursor }, g.creds('kh-police-adp').signing),
      422,
      'ack-mismatch',
    ],
    [
      'a wrong hash',
      'kh-police-adp',
      await signAck({ ...claims, sha256: '0'.repeat(64) }, g.creds('kh-police-adp').signing),
      422,
      'ack-mismatch',
    ],
    [
      "signed with another agency's key",
      'kh-police-adp',
      await signAck(claims, g.creds('th-customs').signing),
      403,
      'forbidden',
    ],
    [
      'by an agency that was not a recipient',
      'la-customs',
      await signAck(claims, g.creds('la-customs').signing),
      422,
      'ack-mismatch',
    ],
    [
      'acked in the future',
      'kh-police-adp',
      await signAck(
        { ...claims, acked_at: new Date(Date.now() + 3_600_000).toISOString() },
        g.creds('kh-police-adp').signing,
      ),
      400,
      'clock-skew',
    ],
    [
      'an extra member',
      'kh-police-adp',
      forgeJws(
        { alg: 'ES256', kid: 'kh-police-adp-sig-1', typ: ACK_TYP },
        JSON.stringify({ ...claims, note: 'x' }),
        g.creds('kh-police-adp').signing,
      ),
      400,
      'bad-request',
    ],
    [
      'no typ',
      'kh-police-adp',
      forgeJws({ alg: 'ES256', kid: 'kh-police-adp-sig-1' }, JSON.stringify(claims), g.creds('kh-police-adp').signing),
      400,
      'bad-request',
    ],
    [
      'a bad signature',
      'kh-police-adp',
      (await signAck(claims, g.creds('kh-police-adp').signing)).slice(0, -6) + 'AAAAAA',
      400,
      'signature-invalid',
    ],
    ['not a JWS', 'kh-police-adp', 'hello', 400, 'bad-request'],
  ];
  for (const [what, as, jws, status, code] of cases) {
    const r = await postAck(as, jws);
    t.equal(r.status, status, `${what}: ${status}`);
    t.equal(r.json.code, code, `${what}: ${code}`);
  }
  const noAuth = await fetch(`${url}/v1/inbox/ack`, {
    method: 'POST',
    headers: { 'content-type': 'application/jose' },
    body: 'a.b.c',
  });
  t.equal(noAuth.status, 401, 'needs a client assertion');
  t.notMatch(
    g.logLines.join('\n'),
    new RegExp(opened.jws.slice(20, 60).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
    'no notice content in the logs',
  );
});
