import t from 'tap';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { InboxClientError } from '../broker/agency-client/inbox-client.js';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive, fetchFromApi } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { auditLog } from '../broker/audit/verify.js';
import { COMPLAINT_REASONS, COMPLAINT_TYP, MAX_COMPLAINT_DETAIL } from '../broker/core/complaint.js';
import { repoRoot } from '../broker/core/paths.js';
import { signRecipientJws, verifyRecipientJws } from '../broker/keys/recipient-jws.js';
import { decodeEntry, encodeEntry } from '../broker/log/entry.js';
import { leafHash, verifyInclusion } from '../broker/log/merkle.js';
import { STREAMS } from '../broker/nats/streams.js';
import { sealedHeader } from '../broker/vault/seal.js';
import { COMPLAINT_KIND } from '../broker/acks/complaint.js';
import { statementJws, storedStatement } from '../broker/acks/recipient-statement.js';
import { runCli } from './helpers/cli.js';
import { forgeJws } from './helpers/forge.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { agencyRequests, inboxClients } from './helpers/inbox.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor as waitUntil } from './helpers/wait.js';

t.setTimeout(120_000);
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
const postComplaint = (agency: string, jws: string) => requests.postJose(agency, '/v1/inbox/complaint', jws);
const get = requests.get;
const sign = (claims: Record<string, unknown>, as: string) =>
  signRecipientJws(claims, g.creds(as).signing, COMPLAINT_TYP);

const notice = sampleNotice('seizure-report', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['TH', 'KH'],
  tlp: 'AMBER',
});
t.equal((await g.post((await g.seal(notice, 'vn-customs')).jwe)).status, 202);
// Complaints are about notices delivered: each subtest waits until both recipients have theirs.
const delivered = () =>
  Promise.all(
    ['th-customs', 'kh-police-adp'].map((agency) =>
      waitFor(
        async () => (await client(agency).pull({ limit: 100 })).deliveries.find((d) => d.notice_id === notice.id),
        `${agency}'s delivery`,
      ),
    ),
  );

const THAI = 'ลายเซ็นของเนื้อหาไม่ถูกต้อง: ข้อมูลการยึดไม่ตรงกับส่วนหัว';
// Arabic with a right-to-left mark and a combining mark: kept as sent, never normalized.
const ARABIC = 'التوقيع غير صالح\u200f — لا يطابق المخطط (الوزن بالكيلوغرام)\u0651';
const claims = (patch: Record<string, unknown> = {}) => ({
  notice_id: notice.id,
  agency: 'kh-police-adp',
  reason: 'body-schema-invalid',
  detail: ARABIC,
  complained_at: new Date().toISOString(),
  ...patch,
});

t.test('a recipient files a complaint: logged, listed to the origin, byte-exact, idempotent', async (t) => {
  await delivered();
  const filed = await client('th-customs').fileComplaint({
    noticeId: notice.id,
    reason: 'body-signature-invalid',
    detail: THAI,
  });
  t.match(filed, { notice_id: notice.id, agency: 'th-customs', reason: 'body-signature-invalid', duplicate: false });

  const kh = await sign(claims(), 'kh-police-adp');
  const first = await postComplaint('kh-police-adp', kh);
  t.equal(first.status, 201, JSON.stringify(first.json));
  const again = await postComplaint('kh-police-adp', kh);
  t.equal(again.status, 200, 'the same complaint again (a retry): idempotent');
  t.same(again.json, { ...first.json, duplicate: true }, 'answered with the first');
  const other = await postComplaint(
    'kh-police-adp',
    await sign(claims({ reason: 'other', detail: '' }), 'kh-police-adp'),
  );
  t.equal(other.status, 409, 'a second, different complaint by the same agency is refused');
  t.equal(other.json.code, 'complaint-conflict');

  // The log entry: the complaint's SHA-256, never its detail.
  const m = await g.gw.bus.getMessage(STREAMS.log, first.json.log_index + 1);
  t.equal(m?.subject, 'log.complaint');
  const entry = decodeEntry(m!.data) as unknown as Record<string, unknown>;
  t.same(Object.keys(entry).sort(), [
    'agency',
    'complained_at',
    'kind',
    'notice_id',
    'reason',
    'received_at',
    'sha256',
    'signer_kid',
    'v',
  ]);
  t.match(entry, {
    kind: 'complaint',
    notice_id: notice.id,
    agency: 'kh-police-adp',
    signer_kid: 'kh-police-adp-sig-1',
    reason: 'body-schema-invalid',
    sha256: createHash('sha256').update(kh).digest('hex'),
  });
  t.same(Buffer.from(encodeEntry(entry as never)), Buffer.from(m!.data), 'canonical JSON');
  let inLog = 0;
  const info = await g.gw.bus.jsm.streams.info(STREAMS.log);
  for (let s = 1; s <= info.state.last_seq; s++)
    if ((await g.gw.bus.getMessage(STREAMS.log, s))?.subject === 'log.complaint') inLog++;
  t.equal(inLog, 2, 'one entry per complaint, the retry and the refused one not logged');

  // The origin lists them; anyone verifies them with the recipient's key.
  const listed = await get('vn-customs', `/v1/notices/${notice.id}/complaints`);
  t.equal(listed.status, 200);
  t.same(
    listed.json.complaints.map((c: any) => [c.agency, c.reason]),
    [
      ['th-customs', 'body-signature-invalid'],
      ['kh-police-adp', 'body-schema-invalid'],
    ],
  );
  const byAgency = new Map<string, any>(listed.json.complaints.map((c: any) => [c.agency, c]));
  t.equal(byAgency.get('kh-police-adp').complaint, kh, 'the complaint exactly as signed');
  for (const [agency, detail] of [
    ['th-customs', THAI],
    ['kh-police-adp', ARABIC],
  ] as const) {
    const c = byAgency.get(agency);
    const opened = await verifyRecipientJws(
      c.complaint,
      await client('vn-customs').agencyKeys(agency),
      new Date(c.received_at),
      COMPLAINT_TYP,
      'complaint',
    );
    t.equal((opened.payload as any).detail, detail, `${agency}: detail byte for byte`);
    t.same(
      Buffer.from((opened.payload as any).detail, 'utf8'),
      Buffer.from(detail, 'utf8'),
      `${agency}: same UTF-8 bytes`,
    );
  }
  for (const who of ['th-customs', 'kh-police-adp', 'la-customs']) {
    const r = await get(who, `/v1/notices/${notice.id}/complaints`);
    t.equal(r.status, 404, `${who} (not the origin) cannot list them`);
    t.equal(r.json.code, 'not-found');
  }
  t.notMatch(g.logLines.join('\n'), /ลายเซ็น|التوقيع/, 'no complaint detail in the logs');

  // The proof API serves the complaint's entry like any other.
  await waitFor(
    async () => ((g.gw.checkpointer?.status.checkpointSize ?? 0) > first.json.log_index ? true : undefined),
    'a checkpoint over the complaints',
  );
  const cp = await get('hub-auditor', '/v1/log/checkpoint');
  const proof = await get(
    'hub-auditor',
    `/v1/log/proof/inclusion?index=${first.json.log_index}&tree_size=${cp.json.tree_size}`,
  );
  t.equal(proof.status, 200);
  t.ok(
    verifyInclusion(
      leafHash(m!.data),
      first.json.log_index,
      cp.json.tree_size,
      proof.json.proof.map((h: string) => new Uint8Array(Buffer.from(h, 'hex'))),
      new Uint8Array(Buffer.from(cp.json.root_hash, 'hex')),
    ),
    'the inclusion proof of the complaint entry verifies',
  );
});

t.test('audit verify checks the complaints: commitment and the recipient signature', async (t) => {
  // An archive in clear carries no complaint (a detail may quote the notice): counted, not checked.
  const clear = await exportArchive(g.gw.bus, g.config.brokerId, g.gw.keyring.verificationKeys, null);
  t.equal(clear.complaints, undefined, 'a clear archive carries no complaint');
  const clearReport = await auditLogWithOrigins(archiveToAuditInput(JSON.parse(JSON.stringify(clear))));
  t.ok(clearReport.ok, 'and still verifies');
  t.same([clearReport.complaints, clearReport.complaintsChecked], [2, undefined], 'counted, not checked');
  // With the storage keys (an archive to be encrypted to an auditor): the complaints opened, exactly as signed.
  const archive = JSON.parse(
    JSON.stringify(await exportArchive(g.gw.bus, g.config.brokerId, g.gw.keyring.verificationKeys, g.gw.keyring)),
  );
  t.equal(archive.format, 'liaison-audit-archive/4');
  t.equal(archive.complaints.length, 2, 'the archive carries the complaints');
  const report = await auditLogWithOrigins(archiveToAuditInput(archive));
  t.same(report.problems, []);
  t.ok(report.ok, 'the log with its complaints verifies');
  t.equal(report.complaints, 2, 'two complaint entries');
  t.equal(report.complaintsChecked, 2, 'both held complaints checked against their entries');
  t.equal(report.complaintSignaturesChecked, 2, 'both signatures checked against the key history');

  // Live, through the API as an auditor: the complaints are read from the gateway and checked against their entries.
  const seen = await get('hub-auditor', `/v1/notices/${notice.id}/complaints`);
  t.equal(seen.status, 200, 'an auditor lists the complaints about any notice');
  t.equal(seen.json.complaints.length, 2);
  const live = auditLog(await fetchFromApi((p) => get('hub-auditor', p), g.config.brokerId, g.jwks.keys));
  t.same(live.problems, []);
  t.same([live.complaints, live.complaintsChecked], [2, 2], 'live: both complaints checked against their entries');
  const cliLive = await runCli(['audit', 'verify', '--url', url, '--as', 'hub-auditor', '--data-dir', g.dataDir]);
  t.equal(cliLive.code, 0, cliLive.stderr);
  t.match(cliLive.stdout, /complaints: +2 complaint entries, 2 complaints checked against them/);

  // A complaint swapped for another validly signed one: it no longer matches its commitment.
  const swapped = structuredClone(archive);
  const kh = swapped.complaints.find((c: any) => c.agency === 'kh-police-adp');
  kh.jws = await sign(claims({ reason: 'other' }), 'kh-police-adp');
  const bad = await auditLogWithOrigins(archiveToAuditInput(swapped));
  t.notOk(bad.ok);
  t.ok(
    bad.problems.some((p) => p.code === 'complaint-mismatch' && /does not match its commitment/.test(p.message)),
    'complaint-mismatch: commitment',
  );
  // The agency's key history without the key that signed: the signature cannot be checked.
  const noKey = structuredClone(archive);
  noKey.agency_keys = noKey.agency_keys.filter((k: any) => k.agency !== 'th-customs');
  const unsigned = await auditLogWithOrigins(archiveToAuditInput(noKey));
  t.same(
    unsigned.problems.map((p) => p.code),
    ['complaint-mismatch'],
    'complaint-mismatch: not signed by a key of the recipient',
  );
  // Dropped from the evidence: the entry commits to a complaint not held.
  const dropped = structuredClone(archive);
  dropped.complaints = dropped.complaints.filter((c: any) => c.agency !== 'th-customs');
  t.same(
    (await auditLogWithOrigins(archiveToAuditInput(dropped))).problems.map((p) => p.code),
    ['complaint-missing'],
  );
  // Format 3 (before complaints) is still read: complaints counted, not checked.
  const { complaints: _c, ...v3 } = archive;
  const old = await auditLogWithOrigins(archiveToAuditInput({ ...v3, format: 'liaison-audit-archive/3' }));
  t.ok(old.ok);
  t.equal(old.complaints, 2);
  t.equal(old.complaintsChecked, undefined, 'not checked');
});

t.test('refused complaints', async (t) => {
  await delivered();
  const unknown = randomUUID();
  const cases: [string, string, string, number, string][] = [
    [
      'by an agency the notice was not delivered to',
      'la-customs',
      await sign(claims({ agency: 'la-customs' }), 'la-customs'),
      422,
      'ack-mismatch',
    ],
    [
      'about an unknown notice',
      'kh-police-adp',
      await sign(claims({ notice_id: unknown }), 'kh-police-adp'),
      422,
      'ack-mismatch',
    ],
    [
      'a forged signature',
      'kh-police-adp',
      (await sign(claims(), 'kh-police-adp')).slice(0, -6) + 'AAAAAA',
      400,
      'signature-invalid',
    ],
    ["signed with another agency's key", 'kh-police-adp', await sign(claims(), 'th-customs'), 403, 'forbidden'],
    [
      'naming another agency',
      'kh-police-adp',
      await sign(claims({ agency: 'th-customs' }), 'kh-police-adp'),
      403,
      'forbidden',
    ],
    [
      'a reason not in the list',
      'kh-police-adp',
      await sign(claims({ reason: 'looks-wrong' }), 'kh-police-adp'),
      400,
      'bad-request',
    ],
    [
      'an oversize detail',
      'kh-police-adp',
      await sign(claims({ detail: 'ก'.repeat(MAX_COMPLAINT_DETAIL + 1) }), 'kh-police-adp'),
      400,
      'bad-request',
    ],
    [
      'a control character in the detail',
      'kh-police-adp',
      await sign(claims({ detail: 'red\u001b[0m' }), 'kh-police-adp'),
      400,
      'bad-request',
    ],
    [
      'complained in the future',
      'kh-police-adp',
      await sign(claims({ complained_at: new Date(Date.now() + 3_600_000).toISOString() }), 'kh-police-adp'),
      400,
      'clock-skew',
    ],
    ['an extra member', 'kh-police-adp', await sign({ ...claims(), note: 'x' }, 'kh-police-adp'), 400, 'bad-request'],
    [
      'a read receipt typ',
      'kh-police-adp',
      forgeJws(
        { alg: 'ES256', kid: 'kh-police-adp-sig-1', typ: 'liaison-ack+jws' },
        JSON.stringify(claims()),
        g.creds('kh-police-adp').signing,
      ),
      400,
      'bad-request',
    ],
    ['not a JWS', 'kh-police-adp', 'hello', 400, 'bad-request'],
    ['too large', 'kh-police-adp', 'a.' + 'b'.repeat(13_000) + '.c', 413, 'too-large'],
  ];
  for (const [what, as, jws, status, code] of cases) {
    const r = await postComplaint(as, jws);
    t.equal(r.status, status, `${what}: ${status} ${JSON.stringify(r.json)}`);
    t.equal(r.json.code, code, `${what}: ${code}`);
  }
  const unknownAnswer = await postComplaint('kh-police-adp', cases[1]![2]);
  const notRecipient = await postComplaint('la-customs', cases[0]![2]);
  t.same(
    [unknownAnswer.json.title, unknownAnswer.json.detail],
    [notRecipient.json.title, notRecipient.json.detail],
    'an unknown notice reads the same as one not delivered to the caller',
  );
  const noAuth = await fetch(`${url}/v1/inbox/complaint`, {
    method: 'POST',
    headers: { 'content-type': 'application/jose' },
    body: 'a.b.c',
  });
  t.equal(noAuth.status, 401, 'needs a client assertion');

  // The client checks before it sends; the server would refuse the same.
  await t.rejects(
    client('th-customs').fileComplaint({ noticeId: notice.id, reason: 'nope' as never }),
    { code: 'bad-request' },
    'the client refuses a reason not in the list',
  );
  const refused = await client('la-customs')
    .fileComplaint({ noticeId: notice.id, reason: 'other' })
    .catch((e: unknown) => e);
  t.ok(refused instanceof InboxClientError);
  t.match(refused, { status: 422, code: 'ack-mismatch' });
});

t.test('liaison inbox complain', async (t) => {
  const n2 = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });
  t.equal((await g.post((await g.seal(n2, 'vn-customs')).jwe)).status, 202);
  await waitFor(
    async () => (await client('th-customs').pull({ limit: 100 })).deliveries.find((d) => d.notice_id === n2.id),
    'the delivery',
  );
  const cli = (...args: string[]) => runCli(['inbox', 'complain', ...args, '--url', url, '--data-dir', g.dataDir]);
  const ok = await cli(n2.id, '--as', 'th-customs', '--reason', 'header-mismatch', '--detail', THAI, '--json');
  t.equal(ok.code, 0, ok.stderr);
  const filed = JSON.parse(ok.stdout);
  t.match(filed, { notice_id: n2.id, agency: 'th-customs', reason: 'header-mismatch', duplicate: false });
  const listed = await get('vn-customs', `/v1/notices/${n2.id}/complaints`);
  const opened = await verifyRecipientJws(
    listed.json.complaints[0].complaint,
    await client('vn-customs').agencyKeys('th-customs'),
    new Date(),
    COMPLAINT_TYP,
    'complaint',
  );
  t.equal((opened.payload as any).detail, THAI, 'the detail as typed');

  const help = await runCli(['inbox', 'complain', '--help']);
  t.match(help.stdout, /liaison inbox complain NOTICE_ID .*--reason CODE/);
  t.match(help.stdout, /body-signature-invalid, body-schema-invalid, header-mismatch,/);
  const bad = await cli(n2.id, '--as', 'th-customs', '--reason', 'bad');
  t.equal(bad.code, 2, 'a reason not in the list is a usage error');
  t.match(bad.stderr, /--reason must be one of/);
  const long = await cli(n2.id, '--as', 'th-customs', '--reason', 'other', '--detail', 'x'.repeat(1001));
  t.equal(long.code, 2);
  const refused = await cli(n2.id, '--as', 'kh-police-adp', '--reason', 'other');
  t.equal(refused.code, 1, 'a refusal from the gateway');
  t.match(refused.stderr, /ack-mismatch/);
});

t.test("a complaint is sealed under its notice's key in ACKS; erasing the notice shreds it", async (t) => {
  const n3 = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs', 'kh-police-adp'],
    tlp: 'AMBER',
  });
  t.equal((await g.post((await g.seal(n3, 'vn-customs')).jwe)).status, 202);
  for (const agency of ['th-customs', 'kh-police-adp'])
    await waitFor(
      async () => (await client(agency).pull({ limit: 100 })).deliveries.find((d) => d.notice_id === n3.id),
      `${agency}'s delivery`,
    );
  const jws = await sign(claims({ notice_id: n3.id, agency: 'th-customs', detail: THAI }), 'th-customs');
  t.equal((await postComplaint('th-customs', jws)).status, 201);
  const stored = await g.gw.bus.lastMessage(STREAMS.acks, `complaints.${n3.id}.th-customs`);
  t.not(Buffer.from(stored!.data).toString(), jws, 'ACKS does not hold the complaint as received');
  t.same(sealedHeader(stored!.data), { noticeId: n3.id, format: 'complaint+jws' }, 'sealed under the notice id');
  const listed = await get('vn-customs', `/v1/notices/${n3.id}/complaints`);
  t.equal(listed.json.complaints[0].complaint, jws, 'listed exactly as received');

  const erased = await fetch(`${url}/v1/admin/notices/${n3.id}/erase`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await makeClientAssertion('hub-operator', g.creds('hub-operator').signing, g.config.brokerId)}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ reason: 'court order' }),
  });
  t.equal(erased.status, 201, await erased.text());
  const after = await get('vn-customs', `/v1/notices/${n3.id}/complaints`);
  t.equal(after.status, 404, 'the complaint is shredded with the notice');
  const again = await postComplaint(
    'th-customs',
    await sign(claims({ notice_id: n3.id, agency: 'th-customs', reason: 'other' }), 'th-customs'),
  );
  t.equal(again.status, 409, 'the first complaint still stands in the log');
  const late = await postComplaint(
    'kh-police-adp',
    await sign(claims({ notice_id: n3.id, agency: 'kh-police-adp' }), 'kh-police-adp'),
  );
  t.equal(late.status, 404, 'no new complaint about an erased notice');
  t.equal(late.json.detail, 'this notice was erased');
  // The log still verifies: the erased notice's complaint is not "missing" from an archive with contents.
  const archive = await exportArchive(g.gw.bus, g.config.brokerId, g.gw.keyring.verificationKeys, g.gw.keyring);
  t.notOk(
    archive.complaints!.some((c) => c.notice_id === n3.id),
    'the archive holds no complaint of the erased notice',
  );
  const report = await auditLogWithOrigins(archiveToAuditInput(JSON.parse(JSON.stringify(archive))));
  t.same(report.problems, [], 'verifies: its complaint went with the erased notice');
});

t.test('a stored complaint is read only when it opens to what its entry commits to', async (t) => {
  const deps = { bus: g.gw.bus, storageKeys: g.gw.keyring };
  const sealed = (await g.gw.bus.lastMessage(STREAMS.acks, `complaints.${notice.id}.kh-police-adp`))!;
  const stored = storedStatement(COMPLAINT_KIND, sealed)!;
  const listed = await get('vn-customs', `/v1/notices/${notice.id}/complaints`);
  const jws = listed.json.complaints.find((c: any) => c.agency === 'kh-police-adp').complaint as string;
  t.same(await statementJws(deps, COMPLAINT_KIND, sealed, stored.entry), { jws }, 'sealed: opened');
  const clear = { ...sealed, data: new TextEncoder().encode(jws) };
  t.same(await statementJws(deps, COMPLAINT_KIND, clear, stored.entry), { jws }, 'stored in clear before sealing');
  const other = { ...stored.entry, sha256: '0'.repeat(64) };
  t.equal(await statementJws(deps, COMPLAINT_KIND, clear, other), undefined, 'not the complaint logged: skipped');
  const moved = { ...stored.entry, notice_id: randomUUID() };
  t.equal(await statementJws(deps, COMPLAINT_KIND, sealed, moved), undefined, "another notice's: does not open");
  const noKeys = { bus: g.gw.bus, storageKeys: { storageKey: undefined, storageKeyById: () => undefined } };
  await t.rejects(
    statementJws(noKeys, COMPLAINT_KIND, sealed, stored.entry),
    { code: 'unavailable' },
    'a storage key this instance lacks: retryable, not junk',
  );
});

t.test('the JSON Schema and the code agree', async (t) => {
  const schema = JSON.parse(readFileSync(join(repoRoot, 'schemas', 'complaint.schema.json'), 'utf8'));
  t.same(schema.properties.reason.enum, [...COMPLAINT_REASONS]);
  t.equal(schema.properties.detail.maxLength, MAX_COMPLAINT_DETAIL);
  t.same([...schema.required].sort(), Object.keys(claims()).sort());
});
