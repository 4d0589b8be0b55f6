import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { signAck } from '../broker/acks/read-receipt.js';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { STREAMS } from '../broker/nats/streams.js';
import { park } from '../broker/routing/deadletter.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startGpg } from './helpers/gpg.js';
import { findMarker as findMarkerIn, scanStreams } from './helpers/marker-scan.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

/**
 * Issue 23, item 1: notices are sealed at rest. Notices whose free text holds
 * a unique marker (Latin and Arabic; JOSE and OpenPGP origin formats; a
 * withdrawal; an ack of one, a complaint whose detail quotes it, and a
 * dead-lettered webhook delivery of it) are sent, routed and checkpointed;
 * then an authorised NATS connection reads every message (data and headers)
 * of every stream, KV buckets included, and looks for the markers raw, inside
 * every base64 / base64url token decoded, inside every decoded JSON string and
 * inside every OpenPGP message (decompressed): not found anywhere.
 */
t.setTimeout(240_000);
const PGP = 'application/pgp-encrypted';
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  leaseTtlSeconds: 3,
  routerAckWaitSeconds: 2,
  checkpointIntervalMs: 200,
  checkpointEveryEntries: 1,
});
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;
const gpg = startGpg(t);
await gpg.importKey((await g.gw.app.inject({ method: 'GET', url: '/v1/keys' })).json<{ openpgp: string }>().openpgp);
const gb = g.creds('gb-border-force').openpgp!;
await gpg.importKey(gb.private_armored);

const LATIN = `LIAISON-MARKER-${randomBytes(6).toString('hex')}`;
const ARABIC = `علامة-سرية-${randomBytes(6).toString('hex')}`;

/** Where a marker hides in `bytes` (test/helpers/marker-scan.ts), or null. */
const findMarker = (bytes: Uint8Array) => findMarkerIn(bytes, [LATIN, ARABIC]);

// ---- the traffic ------------------------------------------------------------

const client = (agency: string) =>
  new InboxClient({
    url,
    agency,
    signingKey: g.creds(agency).signing,
    encryptionKey: g.creds(agency).encryption,
    brokerId: g.config.brokerId,
  });
const delivered = (agency: string, noticeId: string) =>
  waitFor(
    async () => (await client(agency).pull({ limit: 500 })).deliveries.find((d) => d.notice_id === noticeId),
    `delivery of ${noticeId} to ${agency}`,
    20_000,
  );

const latin = sampleNotice('seizure-report', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['TH', 'KH'],
  tlp: 'AMBER',
  summary: `Seizure at Hai Phong, reference ${LATIN}.`,
});
const arabic = sampleNotice('seizure-report', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['th-customs'],
  tlp: 'RED',
  language: 'ar',
  summary: `ضبط حاوية مبردة في ميناء هاي فونغ ${ARABIC}`,
});
const pgpNotice = sampleNotice('seizure-report', {
  operation: 'aircop',
  origin: { country: 'GB', agency: 'gb-border-force' },
  addressees: ['th-customs'],
  tlp: 'GREEN',
  summary: `Heathrow cargo, ${LATIN} / ${ARABIC}`,
});
const withdrawal = sampleNotice('withdrawal', { references: [latin.id] });
withdrawal.body = {
  ...withdrawal.body,
  action: 'withdraw',
  supersedes: latin.id,
  reason: `Wrong container (${LATIN}; ${ARABIC}).`,
  correction: undefined,
};

t.test('positive control: the scanner finds the markers in what the agencies send', async (t) => {
  const { jws } = await g.seal(latin, 'vn-customs');
  t.match(await findMarker(Buffer.from(jws)), /base64url token/, 'inside a JWS payload');
  t.match(await findMarker(Buffer.from((await g.seal(arabic, 'vn-customs')).jws)), /base64url token/, 'Arabic');
  const pgpSigned = await gpg.run(['--armor', '--local-user', gb.fingerprint, '--sign'], {
    input: JSON.stringify(pgpNotice),
  });
  t.match(await findMarker(Buffer.from(pgpSigned.stdout)), /openpgp literal data/, 'inside an OpenPGP signed message');
  t.equal(await findMarker(Buffer.from(JSON.stringify({ a: 'nothing here' }))), null);
});

t.test('no stream and no bucket holds a marker, in any encoding', async (t) => {
  for (const n of [latin, arabic]) {
    const res = await g.post((await g.seal(n, 'vn-customs')).jwe);
    t.equal(res.status, 202, JSON.stringify(res.json));
  }
  const brokerFpr = g.gw.keyring.openpgp!.fingerprint;
  const pgpRes = await g.post(await gpg.signEncrypt(JSON.stringify(pgpNotice), [gb.fingerprint], [brokerFpr]), PGP);
  t.equal(pgpRes.status, 202, JSON.stringify(pgpRes.json));
  const d = await delivered('th-customs', latin.id);
  await delivered('th-customs', arabic.id);
  await delivered('th-customs', pgpNotice.id);
  const w = await g.post((await g.seal(withdrawal, 'vn-customs')).jwe);
  t.equal(w.status, 202, JSON.stringify(w.json));
  await delivered('th-customs', withdrawal.id);
  // An ack of the Latin notice (its sha256 commits to the signed notice).
  const opened = await client('th-customs').open(d);
  const { createHash } = await import('node:crypto');
  const ack = await signAck(
    {
      notice_id: latin.id,
      cursor: d.cursor,
      sha256: createHash('sha256').update(opened.jws).digest('hex'),
      acked_at: new Date().toISOString(),
    },
    g.creds('th-customs').signing,
  );
  const token = await makeClientAssertion('th-customs', g.creds('th-customs').signing, g.config.brokerId);
  const ackRes = await fetch(`${url}/v1/inbox/ack`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/jose' },
    body: ack,
  });
  t.equal(ackRes.status, 201);
  // A complaint about it, its free-text detail quoting the notice (kept sealed under the notice's key).
  const filed = await client('th-customs').fileComplaint({
    noticeId: latin.id,
    reason: 'other',
    detail: `The summary says ${LATIN} / ${ARABIC}.`,
  });
  t.equal(filed.duplicate, false, 'the complaint is recorded');
  const listed = await g.gw.app.inject({
    method: 'GET',
    url: `/v1/notices/${latin.id}/complaints`,
    headers: {
      authorization: `Bearer ${await makeClientAssertion('vn-customs', g.creds('vn-customs').signing, g.config.brokerId)}`,
    },
  });
  t.equal(listed.statusCode, 200, listed.body);
  t.match(await findMarker(Buffer.from(listed.body)), /token/, 'positive control: the origin reads the detail');
  // A webhook delivery of it that failed every try, parked as the webhook deliverer parks it (DEADLETTER).
  const copy = await g.gw.bus.getMessage(STREAMS.deliveries, d.cursor);
  await park(g.gw.bus, {
    agency: 'th-customs',
    key: `${latin.id}:th-customs`,
    data: copy!.data,
    headers: copy!.header,
    cursor: d.cursor,
    attempts: 5,
    lastError: 'connection refused',
    at: new Date(),
  });
  const logSize = async () => (await g.gw.bus.jsm.streams.info('LOG')).state.messages;
  const size = await logSize();
  await waitFor(
    async () => ((g.gw.checkpointer?.status.checkpointSize ?? 0) >= size ? true : undefined),
    'a checkpoint of the whole log',
    20_000,
  );

  const { found, messages, streams: names } = await scanStreams(g.gw.bus.jsm, [LATIN, ARABIC]);
  t.ok(
    ['NOTICES', 'NOTICE_KEYS', 'ACKS', 'DEADLETTER'].every((n) => names.includes(n)),
    names.join(','),
  );
  t.ok(
    names.some((n) => n.startsWith('KV_')),
    'KV buckets are scanned too',
  );
  t.ok(messages > 20, `${messages} messages in ${names.length} streams scanned`);
  t.same(found, [], 'no marker anywhere');
});
