import t, { type Test } from 'tap';
import { sleep, waitFor } from './helpers/wait.js';
import type { AddressInfo } from 'node:net';
import { InboxClient, InboxClientError } from '../broker/agency-client/inbox-client.js';
import type { InboxDelivery } from '../broker/core/inbox-delivery.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { inboxClients } from './helpers/inbox.js';
import { CompactEncrypt, importJWK, type CompactJWEHeaderParameters } from 'jose';
import { connect, headers as natsHeaders } from 'nats';
import { decryptDelivery } from '../adapters/jose/encrypt.js';
import { publicPart } from '../broker/keys/jwk.js';
import { STREAMS } from '../broker/nats/streams.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { sseHeartbeatSeconds: 1, leaseTtlSeconds: 3, routerAckWaitSeconds: 2 });
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;

const client = inboxClients(g, url);

/** The call must fail with this HTTP status (and problem code). */
async function expectProblem(t: Test, p: Promise<unknown>, status: number, code: string | undefined, what: string) {
  try {
    await p;
    t.fail(`${what}: expected ${status}, it succeeded`);
  } catch (e) {
    t.ok(e instanceof InboxClientError, `${what}: a problem answer`);
    t.equal((e as InboxClientError).status, status, `${what}: status ${status}`);
    if (code) t.equal((e as InboxClientError).code, code, `${what}: code ${code}`);
  }
}

/** Every delivery in an agency's inbox (all pages). */
async function allDeliveries(agency: string): Promise<InboxDelivery[]> {
  const out: InboxDelivery[] = [];
  let after = 0;
  for (let i = 0; i < 100; i++) {
    const page = await client(agency).pull({ after, limit: 50 });
    out.push(...page.deliveries);
    if (page.deliveries.length === 0) break;
    after = page.next;
  }
  return out;
}

const post = async (notice: Record<string, unknown>, from = 'vn-customs') => {
  const res = await g.post((await g.seal(notice, from)).jwe);
  if (res.status !== 202) throw new Error(`post refused: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json;
};
const fromVn = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
    tlp: 'AMBER',
    ...patch,
  });

/** Wait until the router has written every delivery of a notice. */
const routed = async (noticeId: string, expected: number) =>
  waitFor(async () => {
    let n = 0;
    for (const agency of [
      'th-customs',
      'kh-police-adp',
      'la-customs',
      'cn-customs',
      'vn-c04',
      'gb-border-force',
      'vn-customs',
      'fr-douane',
    ]) {
      const page = await client(agency).pull({ limit: 500 });
      n += page.deliveries.filter((d) => d.notice_id === noticeId).length;
    }
    return n >= expected ? n : undefined;
  }, `routing of ${noticeId}`);

const PEOPLE = ['th-customs', 'kh-police-adp', 'la-customs', 'gb-border-force', 'cn-customs', 'vn-c04', 'vn-customs'];

const cases = [
  {
    name: 'AMBER to TH and KH',
    patch: { addressees: ['TH', 'KH'], tlp: 'AMBER' },
    to: ['kh-police-adp', 'th-customs'],
  },
  { name: 'TLP:RED to one named agency', patch: { addressees: ['th-customs'], tlp: 'RED' }, to: ['th-customs'] },
  {
    name: 'AMBER+STRICT to named organisations',
    patch: { addressees: ['kh-police-adp', 'th-customs'], tlp: 'AMBER+STRICT' },
    to: ['kh-police-adp', 'th-customs'],
  },
];

for (const c of cases) {
  t.test(`${c.name}: exactly the addressed agencies receive, decrypt and verify it, by pull and by SSE`, async (t) => {
    // Live followers first, from "now" (the current end of their inbox).
    const streams = new Map<string, { got: InboxDelivery[]; abort: AbortController; done: Promise<void> }>();
    for (const agency of PEOPLE) {
      const { next } = await client(agency)
        .pull({ after: 0, limit: 500 })
        .then(async (p) => {
          let after = p.next;
          for (let i = 0; i < 20 && p.deliveries.length; i++) {
            p = await client(agency).pull({ after, limit: 500 });
            after = p.next;
          }
          return { next: after };
        });
      const abort = new AbortController();
      const got: InboxDelivery[] = [];
      const done = (async () => {
        for await (const d of client(agency).follow({ after: next }, abort.signal)) got.push(d);
      })();
      streams.set(agency, { got, abort, done });
    }
    await sleep(200);
    const notice = fromVn(c.patch);
    const receipt = await post(notice);
    t.same(receipt.recipients, c.to, 'the receipt names the recipients');
    await routed(notice.id, c.to.length);

    for (const agency of PEOPLE) {
      const pulled = (await allDeliveries(agency)).filter((d) => d.notice_id === notice.id);
      const s = streams.get(agency)!;
      if (c.to.includes(agency)) {
        t.equal(pulled.length, 1, `${agency} pulls it once`);
        const d = pulled[0]!;
        t.match(d, {
          operation: 'mekong-dragon-6',
          origin: { country: 'VN', agency: 'vn-customs' },
          type: 'seizure-report',
          tlp: c.patch.tlp,
          log_index: receipt.log_index,
        });
        const opened = await client(agency).open(d);
        t.same(opened.notice, notice, `${agency} decrypts it and verifies vn-customs' signature`);
        t.equal(opened.signerKid, 'vn-customs-sig-1');
        await waitFor(async () => (s.got.some((x) => x.notice_id === notice.id) ? true : undefined), `${agency} SSE`);
        const live = s.got.filter((x) => x.notice_id === notice.id);
        t.equal(live.length, 1, `${agency} gets it once over SSE`);
        t.same((await client(agency).open(live[0]!)).notice, notice, `${agency} opens the SSE copy too`);
        t.equal(live[0]!.cursor, d.cursor, 'SSE event id and pull cursor are the same stream position');
      } else {
        t.equal(pulled.length, 0, `${agency} pulls nothing`);
      }
    }
    await sleep(300); // a late wrong delivery would show up here
    for (const agency of PEOPLE) {
      const s = streams.get(agency)!;
      if (!c.to.includes(agency))
        t.equal(s.got.filter((x) => x.notice_id === notice.id).length, 0, `${agency} gets nothing over SSE`);
      s.abort.abort();
      await s.done;
    }
    // A delivery to someone else does not open with this agency's key.
    const other = (await allDeliveries(c.to[0]!)).find((d) => d.notice_id === notice.id)!;
    await t.rejects(
      client('la-customs').open(other),
      { code: 'decrypt-failed' },
      "la-customs cannot decrypt th's copy",
    );
  });
}

t.test('a delivery stored as a compact JWE, before one content encryption per notice, still opens', async (t) => {
  const notice = fromVn({ addressees: ['kh-police-adp'] });
  await post(notice);
  await routed(notice.id, 1);
  const now = (await allDeliveries('kh-police-adp')).find((d) => d.notice_id === notice.id)!;
  t.match(JSON.parse(now.jwe!), { protected: String, header: { kid: String, epk: Object } }, 'new: a flattened JWE');
  // The same delivery as the router wrote it before: the same labels, the body one compact JWE, every member protected.
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const stored = await (await nc.jetstreamManager()).streams.getMessage(STREAMS.deliveries, { seq: now.cursor });
  const h = natsHeaders();
  for (const [k, v] of stored.header) if (k !== 'Nats-Msg-Id') for (const x of v) h.append(k, x);
  const enc = g.creds('kh-police-adp').encryption;
  const { signed, header } = await decryptDelivery(now.jwe!, enc);
  const { epk: _epk, ...members } = header;
  const compact = await new CompactEncrypt(signed)
    .setProtectedHeader(members as CompactJWEHeaderParameters)
    .encrypt(await importJWK({ ...publicPart(enc), alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW'));
  const { seq } = await nc.jetstream().publish(stored.subject, new TextEncoder().encode(compact), { headers: h });
  const old = (await client('kh-police-adp').pull({ after: seq - 1, limit: 1 })).deliveries[0];
  t.equal(old?.jwe, compact, 'served as stored');
  t.same((await client('kh-police-adp').open(old!)).notice, notice, 'the client opens it and verifies the origin');
  const { run } = await import('../broker/cli/liaison.js');
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  const args = ['inbox', 'pull', '--as', 'kh-police-adp', '--url', url, '--data-dir', g.dataDir, '--json'];
  t.equal(await run([...args, '--after', String(seq - 1), '--limit', '1'], io), 0, out.slice(-300));
  const line = JSON.parse(out.trim().split('\n')[0]!) as Record<string, unknown>;
  t.same([line.cursor, line.verified, line.notice], [seq, true, notice], 'and so does liaison inbox pull');
});

t.test('filters: operation, origin country and type narrow the inbox; bad filters are 400 problems', async (t) => {
  const a = fromVn({ addressees: ['th-customs'] });
  await post(a);
  const b = sampleNotice('seizure-report', {
    operation: 'aircop',
    origin: { country: 'GB', agency: 'gb-border-force' },
    addressees: ['th-customs'],
    tlp: 'GREEN',
  });
  await post(b, 'gb-border-force');
  await routed(b.id, 1);
  await routed(a.id, 1);
  const th = client('th-customs');
  const byOp = (await th.pull({ operation: 'aircop', limit: 500 })).deliveries.map((d) => d.notice_id);
  t.ok(byOp.includes(b.id) && !byOp.includes(a.id), 'operation filter');
  const byOrigin = (await th.pull({ origin: 'VN', limit: 500 })).deliveries;
  t.ok(byOrigin.length > 0 && byOrigin.every((d) => d.origin.country === 'VN'), 'origin filter');
  const byType = (await th.pull({ type: 'person-alert', limit: 500 })).deliveries;
  t.equal(byType.length, 0, 'type filter');
  const page = await th.pull({ limit: 1 });
  t.equal(page.deliveries.length, 1);
  t.equal(page.next, page.deliveries[0]!.cursor, 'next is where to continue');
  const page2 = await th.pull({ after: page.next, limit: 1 });
  t.ok(page2.deliveries[0]!.cursor > page.next, 'the next page starts after the cursor');
  for (const [q, what] of [
    [{ operation: 'mekong.*' }, 'operation with a dot'],
    [{ origin: '>' }, 'origin wildcard'],
    [{ type: 'a b' }, 'type with a space'],
    [{ origin: 'vn' }, 'lower-case country'],
  ] as const) {
    await expectProblem(t, th.pull(q), 400, 'bad-request', what);
  }
  await expectProblem(t, th.pull({ after: -1 }), 400, 'bad-request', 'negative cursor');
  await expectProblem(t, th.pull({ limit: 0 }), 400, 'bad-request', 'limit 0');
  const noAuth = await fetch(`${url}/v1/inbox`);
  t.equal(noAuth.status, 401);
  t.equal(noAuth.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  const auditor = new InboxClient({
    url,
    agency: 'hub-auditor',
    signingKey: g.creds('hub-auditor').signing,
    encryptionKey: g.creds('hub-auditor').encryption,
    brokerId: g.config.brokerId,
  });
  await expectProblem(t, auditor.pull(), 403, 'forbidden', 'an agency without the subscribe role reads no inbox');
});

t.test('SSE: a client that disconnects and reconnects with Last-Event-ID gets no gap and no repeat', async (t) => {
  const th = client('th-customs');
  let start = 0;
  for (let i = 0; i < 50; i++) {
    const p = await th.pull({ after: start, limit: 500 });
    if (p.deliveries.length === 0) break;
    start = p.next;
  }
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) {
    const n = fromVn({ addressees: ['th-customs'], summary: `batch ${i}` });
    ids.push(n.id);
    await post(n);
  }
  const got: InboxDelivery[] = [];
  let abort = new AbortController();
  let heartbeats = 0;
  for await (const d of th.follow({ after: start }, abort.signal, () => heartbeats++)) {
    got.push(d);
    if (got.length === 3) {
      abort.abort(); // the client goes away mid-stream
      break;
    }
  }
  const lastId = got[got.length - 1]!.cursor;
  // More notices arrive while it is away.
  for (let i = 8; i < 12; i++) {
    const n = fromVn({ addressees: ['th-customs'], summary: `batch ${i}` });
    ids.push(n.id);
    await post(n);
  }
  abort = new AbortController();
  const deadline = setTimeout(() => abort.abort(), 15_000);
  for await (const d of th.follow({ after: lastId }, abort.signal, () => heartbeats++)) {
    got.push(d);
    if (got.length === ids.length) break;
  }
  clearTimeout(deadline);
  abort.abort();
  t.same(
    got.map((d) => d.notice_id),
    ids,
    'every notice once, in order, across the reconnect',
  );
  const cursors = got.map((d) => d.cursor);
  t.same(
    cursors,
    [...cursors].sort((a, b) => a - b),
    'event ids increase',
  );
  t.equal(new Set(cursors).size, cursors.length, 'no repeat');

  // Heartbeats on an idle stream.
  const idle = new AbortController();
  let beats = 0;
  const idleDone = (async () => {
    for await (const _ of th.follow({ after: cursors[cursors.length - 1]! }, idle.signal, () => beats++));
  })();
  await waitFor(async () => (beats >= 2 ? true : undefined), 'two heartbeats', 5000);
  idle.abort();
  await idleDone;
  t.ok(beats >= 2, 'comment-line heartbeats on an idle stream');
});

t.test('SSE: a reader that pauses and resumes still gets every event (the server waits for drain)', async (t) => {
  const n = 40;
  let last = '';
  for (let i = 0; i < n; i++) {
    const notice = fromVn({ addressees: ['kh-police-adp'], summary: 'x'.repeat(2000) });
    last = notice.id;
    await post(notice);
  }
  await routed(last, 1);
  const { makeClientAssertion } = await import('../broker/agency-client/assertion.js');
  const token = await makeClientAssertion('kh-police-adp', g.creds('kh-police-adp').signing, g.config.brokerId);
  const http = await import('node:http');
  const req = http.request(`${url}/v1/inbox/stream`, {
    headers: { authorization: `Bearer ${token}`, 'last-event-id': '0' },
  });
  const res = await new Promise<import('node:http').IncomingMessage>((r) => req.on('response', r).end());
  t.equal(res.statusCode, 200);
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  res.pause();
  await sleep(500);
  let received = '';
  res.on('data', (c: Buffer) => (received += c.toString('utf8')));
  res.resume();
  await waitFor(async () => (received.includes(last) ? true : undefined), 'the last event after resuming');
  req.destroy();
  const ids = [...received.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  t.equal(new Set(ids).size, ids.length, 'no repeats');
  t.same(
    ids,
    [...ids].sort((a, b) => a - b),
    'in order',
  );
});

t.test('registry keys endpoint needs authentication and returns public keys only', async (t) => {
  const res = await fetch(`${url}/v1/registry/agencies/vn-customs/keys`);
  t.equal(res.status, 401);
  const keys = await client('th-customs').agencyKeys('vn-customs');
  t.ok(keys.some((k) => k.kid === 'vn-customs-sig-1' && k.use === 'sig'));
  t.notOk(JSON.stringify(keys).includes('"d"'), 'no private member');
  await expectProblem(t, client('th-customs').agencyKeys('nobody-here'), 404, 'not-found', 'unknown agency');
});

t.test('CLI: liaison inbox pull and follow decrypt, verify and print', async (t) => {
  const { run } = await import('../broker/cli/liaison.js');
  const notice = fromVn({ addressees: ['kh-police-adp'], summary: 'Tịch thu 120 kg vảy tê tê tại cảng Hải Phòng' });
  await post(notice);
  await routed(notice.id, 1);
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  const code = await run(
    ['inbox', 'pull', '--as', 'kh-police-adp', '--url', url, '--data-dir', g.dataDir, '--limit', '500', '--json'],
    io,
  );
  t.equal(code, 0, out.slice(-300));
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, any>);
  const mine = lines.find((l) => l.notice_id === notice.id);
  t.equal(mine?.verified, true, 'verified');
  t.same(mine?.notice, notice, 'the decrypted notice, byte-for-byte the one sent');
  t.same(lines[lines.length - 1]?.count, lines.length - 1);

  out = '';
  const last = (await allDeliveries('kh-police-adp')).find((d) => d.notice_id === notice.id)!;
  const follow = run(
    [
      'inbox',
      'follow',
      '--as',
      'kh-police-adp',
      '--url',
      url,
      '--data-dir',
      g.dataDir,
      '--after',
      String(last.cursor - 1),
      '--count',
      '1',
    ],
    io,
  );
  t.equal(await follow, 0);
  t.match(out, /signature verified \(vn-customs-sig-1\)/);
  t.match(out, /Tịch thu 120 kg vảy tê tê/);
  t.match(out, /from vn-customs \(VN\) TLP:AMBER seizure-report/);
});
