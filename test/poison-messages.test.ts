/**
 * Issue 20: no poison message takes a gateway down. Junk (a stored NATS status
 * message: empty body, header `NATS/1.0 404`; random bytes; JSON of the wrong
 * shape; for KV a delete marker) is written with an authorised NATS connection
 * into every bucket and stream a gateway reads. The gateway stays up, no client
 * request answers 500, /readyz names each source and where, the metric counts
 * it, and the next notice is accepted, routed, readable, logged and checkpointed.
 * A restart on the poisoned registry starts (it crashed before).
 */
import t, { type Test } from 'tap';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { importJWK, SignJWT } from 'jose';
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from 'nats';
import { createHash } from 'node:crypto';
import { signAck } from '../broker/acks/read-receipt.js';
import { jtiKey } from '../broker/auth/client-assertion.js';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { STREAMS } from '../broker/nats/streams.js';
import { listDeadLetters } from '../broker/routing/deadletter.js';
import { verifyWebhook } from '../adapters/webhook/index.js';
import { webhookConsumer } from '../adapters/webhook/deliverer.js';
import { webhookConsumerReady, webhookReceiver } from './helpers/webhook-receiver.js';
import { startTestGateway, sampleNotice, type TestGateway } from './helpers/gateway.js';
import { startTestNats, type TestNats } from './helpers/nats.js';
import { waitFor as waitUntil } from './helpers/wait.js';
import { publicWhere } from '../broker/http/routes/health.js';

t.setTimeout(240_000);
const waitFor = <T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 20_000) =>
  waitUntil(fn, what, ms);

const enc = new TextEncoder();
/** The junk: what NATS itself sends as "no messages", stored as a message. */
const status404 = (): { data: Uint8Array; headers: MsgHdrs } => ({
  data: new Uint8Array(0),
  headers: natsHeaders(404, 'No Messages'),
});
const random = (): { data: Uint8Array; headers?: MsgHdrs } => ({ data: randomBytes(64) });
const wrongShape = (): { data: Uint8Array; headers?: MsgHdrs } => ({
  data: enc.encode(JSON.stringify({ hello: 'world', id: 42, keys: 'none' })),
});
const delMarker = (): { data: Uint8Array; headers: MsgHdrs } => {
  const h = natsHeaders();
  h.set('KV-Operation', 'DEL');
  return { data: new Uint8Array(0), headers: h };
};

/** When the running scenario started: a finding must be seen at or after it (the ledger is one per process, and two scenarios run here). */
let scenarioStart = '';

/** Write junk the way an agency's slip, an operator's or a bug could: a plain publish the stream (or bucket) captures. */
async function poison(
  nc: NatsConnection,
  subject: string,
  junk: { data: Uint8Array; headers?: MsgHdrs | undefined },
): Promise<number> {
  const ack = await nc.jetstream().publish(subject, junk.data, junk.headers ? { headers: junk.headers } : {});
  return ack.seq;
}

interface Ctx {
  nats: TestNats;
  g: TestGateway;
  url: string;
  nc: NatsConnection;
  /** Every HTTP status the test's client requests got (none may be 500). */
  statuses: number[];
}

async function gateway(
  t: Test,
  nats: TestNats,
  overrides: Record<string, unknown>,
  dataDir?: string,
): Promise<{ g: TestGateway; url: string }> {
  const g = await startTestGateway(
    t,
    nats.url,
    {
      sseHeartbeatSeconds: 1,
      leaseTtlSeconds: 3,
      routerAckWaitSeconds: 2,
      checkpointIntervalMs: 200,
      checkpointEveryEntries: 1,
      ...overrides,
    },
    dataDir ? { dataDir } : {},
  );
  await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
  return { g, url: `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}` };
}

const client = (c: Ctx, agency: string) =>
  new InboxClient({
    url: c.url,
    agency,
    signingKey: c.g.creds(agency).signing,
    encryptionKey: c.g.creds(agency).encryption,
    brokerId: c.g.config.brokerId,
  });
const bearer = async (c: Ctx, agency: string) =>
  `Bearer ${await makeClientAssertion(agency, c.g.creds(agency).signing, c.g.config.brokerId)}`;

async function http(c: Ctx, path: string, init: RequestInit = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${c.url}${path}`, init);
  c.statuses.push(res.status);
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}

async function readyz(c: Ctx): Promise<{ status: number; json: any }> {
  return http(c, '/readyz');
}

/** /readyz lists a finding of `source` at `where` (a string or a pattern). */
async function expectFinding(
  t: Test,
  c: Ctx,
  source: string,
  where: string | RegExp,
  what: string,
  since = scenarioStart,
): Promise<void> {
  const found = await waitFor(
    async () => {
      const r = await readyz(c);
      if (r.status !== 200 || r.json.status !== 'degraded') return undefined;
      // /readyz shows a KV finding without its key (publicWhere); the test names the key it wrote.
      return (r.json.problems as any[]).find(
        (p) =>
          p.kind === 'integrity-finding' &&
          p.source === source &&
          p.at >= since &&
          (typeof where === 'string' ? p.where === publicWhere(where) : where.test(p.where)),
      );
    },
    `readyz to name ${source} ${String(where)}`,
  ).catch(() => undefined);
  t.ok(found, `${what}: /readyz names ${source} at ${String(where)}`);
  if (found) t.match(found, { reason: String, at: String }, `${what}: with a reason and a time`);
}

async function findingsCount(c: Ctx, source: string): Promise<number> {
  const text = await c.g.gw.metrics.registry.getSingleMetricAsString('liaison_integrity_findings_total');
  const m = new RegExp(`liaison_integrity_findings_total\\{source="${source}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

const fromVn = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
    tlp: 'AMBER',
    ...patch,
  });

/** The next notice goes all the way: accepted, routed to th-customs's inbox (readable, opens), logged, checkpointed. */
async function nextNoticeGoesThrough(t: Test, c: Ctx, what: string): Promise<void> {
  const notice = fromVn();
  const res = await c.g.post((await c.g.seal(notice, 'vn-customs')).jwe);
  c.statuses.push(res.status);
  t.equal(res.status, 202, `${what}: the next notice is accepted`);
  const logIndex = res.json.log_index as number;
  const d = await waitFor(
    async () => (await client(c, 'th-customs').pull({ limit: 500 })).deliveries.find((x) => x.notice_id === notice.id),
    `${what}: th-customs's delivery`,
  );
  const opened = await client(c, 'th-customs').open(d);
  t.equal(opened.notice.id, notice.id, `${what}: routed to th-customs, and it opens`);
  const logged = await c.g.gw.bus.getMessage(STREAMS.log, logIndex + 1);
  t.ok(logged && new TextDecoder().decode(logged.data).includes(notice.id), `${what}: logged at ${logIndex}`);
  const cp = c.g.gw.checkpointer!;
  await waitFor(
    () => (cp.status.checkpointSize > logIndex ? true : undefined),
    `${what}: a checkpoint covering ${logIndex}`,
  );
  t.pass(`${what}: checkpointed`);
}

/** The repro: the 404 status message in KV_registry, under an agency's key. */
async function registryRepro(t: Test, c: Ctx): Promise<number> {
  const rev = await poison(c.nc, '$KV.registry.agency.th-customs', status404());
  await expectFinding(
    t,
    c,
    'registry',
    `registry/agency.th-customs@${rev}`,
    'a 404 status message under agency.th-customs',
  );
  t.ok(
    c.g.gw.registry.snapshot.agency('th-customs'),
    'th-customs keeps its last good record (not "removed", not "no keys")',
  );
  t.ok(c.g.gw.bus.isConnected(), 'the gateway is up and connected');
  return rev;
}

async function scenario(t: Test, overrides: Record<string, unknown>): Promise<void> {
  scenarioStart = new Date().toISOString();
  const nats = await startTestNats(t);
  const { g, url } = await gateway(t, nats, overrides);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const c: Ctx = { nats, g, url, nc, statuses: [] };
  await nextNoticeGoesThrough(t, c, 'before any junk');
  const before = await findingsCount(c, 'registry');

  await t.test('the issue: a 404 status message in KV registry', async (t) => {
    await registryRepro(t, c);
    t.ok(
      (await findingsCount(c, 'registry')) > before,
      'counted in liaison_integrity_findings_total{source="registry"}',
    );
  });

  await t.test(
    'other junk in the registry: random bytes, the wrong shape, a delete marker, an unknown key',
    async (t) => {
      const kh = await poison(nc, '$KV.registry.agency.kh-police-adp', random());
      const cn = await poison(nc, '$KV.registry.agency.cn-customs', wrongShape());
      const la = await poison(nc, '$KV.registry.agency.la-customs', delMarker());
      const odd = await poison(nc, '$KV.registry.junk', random());
      await expectFinding(t, c, 'registry', `registry/agency.kh-police-adp@${kh}`, 'random bytes');
      await expectFinding(t, c, 'registry', `registry/agency.cn-customs@${cn}`, 'the wrong shape');
      await expectFinding(t, c, 'registry', `registry/agency.la-customs@${la}`, 'a delete marker');
      await expectFinding(t, c, 'registry', `registry/junk@${odd}`, 'an unknown key');
      for (const a of ['kh-police-adp', 'cn-customs', 'la-customs'])
        t.ok(g.gw.registry.snapshot.agency(a), `${a} keeps its last good record`);
      t.notOk(g.gw.registry.snapshot.agency('junk'), 'junk grants nothing');
      const rec = await http(c, '/v1/admin/agencies/kh-police-adp', {
        headers: { authorization: await bearer(c, 'hub-operator') },
      });
      t.equal(rec.status, 404, 'the record as stored is junk: not found (never a 500)');
      const all = await http(c, '/v1/admin/registry', { headers: { authorization: await bearer(c, 'hub-operator') } });
      t.equal(all.status, 200, 'the whole registry still reads');
      // The watch goes on: a good change after the junk is seen; a record written over junk repairs the key.
      const admin = async () => ({
        authorization: await bearer(c, 'hub-operator'),
        'content-type': 'application/json',
      });
      const vn = await http(c, '/v1/admin/agencies/vn-c04', { headers: await admin() });
      t.equal(vn.status, 200);
      const changed = await http(c, '/v1/admin/agencies/vn-c04', {
        method: 'PUT',
        headers: await admin(),
        body: JSON.stringify({ agency: { ...vn.json, keys: undefined, name: 'Renamed after the junk' } }),
      });
      t.equal(
        changed.status,
        201,
        `a registry change after the junk is recorded (${JSON.stringify(changed.json).slice(0, 300)})`,
      );
      await waitFor(
        () => (g.gw.registry.snapshot.agency('vn-c04')?.name === 'Renamed after the junk' ? true : undefined),
        'the watch to see the change',
      );
      t.pass('the registry watch still follows changes');
      const khLast = g.gw.registry.snapshot.agency('kh-police-adp')!;
      // The store's compare-and-set (what an admin change applies) writes over the junk's revision.
      await g.gw.registry.setAgency('kh-police-adp', () => khLast);
      t.pass('the last good record written back over the junk');
      t.equal(
        (await http(c, '/v1/admin/agencies/kh-police-adp', { headers: await admin() })).status,
        200,
        'the key holds a record again',
      );
    },
  );

  await t.test('junk in KV broker-keys', async (t) => {
    const kid = g.gw.keyring.signing.kid;
    const rev = await poison(nc, '$KV.broker-keys.keyring', random());
    await expectFinding(t, c, 'broker-keys', `broker-keys/keyring@${rev}`, 'random bytes as the keyring');
    t.equal(g.gw.keyring.signing.kid, kid, 'the keyring in use stays');
    const rev2 = await poison(nc, '$KV.broker-keys.keyring', status404());
    await expectFinding(t, c, 'broker-keys', `broker-keys/keyring@${rev2}`, 'a 404 status message as the keyring');
    const rev3 = await poison(nc, '$KV.broker-keys.keyring', delMarker());
    await expectFinding(t, c, 'broker-keys', `broker-keys/keyring@${rev3}`, 'a delete marker on the keyring');
    t.equal(g.gw.keyring.signing.kid, kid, 'the keyring in use still stays');
  });

  await t.test('junk in NOTICES is terminated with a finding; the router goes on', async (t) => {
    const seqs = [
      await poison(nc, 'notices.mekong-dragon-6.VN.seizure-report', status404()),
      await poison(nc, 'notices.mekong-dragon-6.VN.seizure-report', random()),
    ];
    const h = natsHeaders();
    h.set(
      'Liaison-Log-Entry',
      Buffer.from(JSON.stringify({ kind: 'notice', notice_id: randomUUID(), recipients: 'th-customs' })).toString(
        'base64url',
      ),
    );
    seqs.push(await poison(nc, 'notices.mekong-dragon-6.VN.seizure-report', { data: enc.encode('{}'), headers: h }));
    for (const s of seqs) await expectFinding(t, c, 'notices', `NOTICES#${s}`, `junk notice ${s}`);
    await nextNoticeGoesThrough(t, c, 'after junk in NOTICES');
  });

  await t.test("junk in an agency's deliveries is skipped, the others served (pull and SSE)", async (t) => {
    const seqs = [
      await poison(nc, 'deliveries.th-customs.mekong-dragon-6.VN', status404()),
      await poison(nc, 'deliveries.th-customs.mekong-dragon-6.VN', random()),
      await poison(nc, 'deliveries.th-customs.mekong-dragon-6.VN', wrongShape()),
    ];
    const page = await client(c, 'th-customs').pull({ limit: 500 });
    t.ok(page.deliveries.length >= 2, 'the real deliveries are served');
    t.notOk(
      page.deliveries.some((d) => seqs.includes(d.cursor)),
      'the junk is not',
    );
    t.ok(page.next >= (seqs.at(-1) as number), 'and the cursor moves past it');
    for (const s of seqs) await expectFinding(t, c, 'deliveries', `DELIVERIES#${s}`, `junk delivery ${s}`);
    // SSE from the start: the real ones come, the junk does not.
    const abort = new AbortController();
    const seen: number[] = [];
    const timer = setTimeout(() => abort.abort(), 4000);
    try {
      for await (const d of client(c, 'th-customs').follow({}, abort.signal)) {
        seen.push(d.cursor);
        if (d.cursor > (seqs.at(-1) as number) || seen.length >= page.deliveries.length) break;
      }
    } catch {
      /* aborted */
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    t.ok(seen.length >= 2, 'SSE serves the real deliveries');
    t.notOk(
      seen.some((s) => seqs.includes(s)),
      'SSE skips the junk',
    );
    await nextNoticeGoesThrough(t, c, 'after junk in DELIVERIES');
  });

  await t.test('junk in ACKS, DEADLETTER, REGISTRY_EVENTS, leases and the jti bucket', async (t) => {
    // A real receipt, then junk under the same notice: the sender still lists the real one.
    const notice = fromVn();
    const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
    t.equal(res.status, 202);
    const d = await waitFor(
      async () =>
        (await client(c, 'th-customs').pull({ limit: 500 })).deliveries.find((x) => x.notice_id === notice.id),
      'a delivery to ack',
    );
    const opened = await client(c, 'th-customs').open(d);
    const ack = await signAck(
      {
        notice_id: notice.id,
        cursor: d.cursor,
        sha256: createHash('sha256').update(opened.jws).digest('hex'),
        acked_at: new Date().toISOString(),
      },
      g.creds('th-customs').signing,
    );
    const junkAck = await poison(nc, `acks.${notice.id}.kh-police-adp`, status404());
    const junkAck2 = await poison(nc, `acks.${notice.id}.th-customs`, random());
    const posted = await http(c, '/v1/inbox/ack', {
      method: 'POST',
      headers: { authorization: await bearer(c, 'th-customs'), 'content-type': 'application/jose' },
      body: ack,
    });
    t.equal(posted.status, 201, 'a receipt over junk under its subject is recorded');
    const listed = await http(c, `/v1/notices/${notice.id}/acks`, {
      headers: { authorization: await bearer(c, 'vn-customs') },
    });
    t.equal(listed.status, 200, 'the sender lists the receipts');
    t.equal(listed.json.acks?.length, 1, 'the real one only');
    await expectFinding(t, c, 'acks', `ACKS#${junkAck}`, 'a 404 status message in ACKS');
    await expectFinding(t, c, 'acks', `ACKS#${junkAck2}`, 'random bytes in ACKS');

    const dl = await poison(nc, 'deadletter.webhook.th-customs', status404());
    const letters = await listDeadLetters(g.gw.bus, {});
    t.notOk(
      letters.some((l) => l.seq === dl),
      'junk is not listed as a dead letter',
    );
    await expectFinding(t, c, 'deadletter', `DEADLETTER#${dl}`, 'a 404 status message in DEADLETTER');

    // REGISTRY_EVENTS: junk stored under an event id; a change retried with that id is refused (409), not a 500.
    const eventId = randomUUID();
    const ev = await poison(nc, `registry-events.${eventId}`, random());
    const op = await http(c, '/v1/admin/operations/mekong-dragon-6', {
      headers: { authorization: await bearer(c, 'hub-operator') },
    });
    t.equal(op.status, 200);
    const put = await http(c, '/v1/admin/operations/mekong-dragon-6', {
      method: 'PUT',
      headers: { authorization: await bearer(c, 'hub-operator'), 'content-type': 'application/json' },
      body: JSON.stringify({ id: eventId, operation: op.json }),
    });
    t.equal(put.status, 409, 'a change under an event id that holds junk is a conflict');
    await expectFinding(t, c, 'registry-events', `REGISTRY_EVENTS#${ev}`, 'random bytes in REGISTRY_EVENTS');

    // KV leases: junk over the webhook lease takes it from its holder for one TTL at most, with a finding; then it is taken again.
    const lease = await poison(nc, '$KV.leases.webhook', random());
    await expectFinding(t, c, 'leases', `leases/webhook@${lease}`, 'random bytes as the webhook lease');
    await waitFor(
      () => (g.gw.webhooks?.leading ? true : undefined),
      'the webhook lease taken again after the junk aged out',
    );
    t.pass('the webhook deliverer leads again');

    // The jti bucket: junk under a jti refuses it (401, never 500), with a finding.
    const key = g.creds('vn-customs').signing;
    const withJti = async (jti: string) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'JWT' })
        .setIssuer('vn-customs')
        .setSubject('vn-customs')
        .setAudience(g.config.brokerId)
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .setJti(jti)
        .sign(await importJWK(key, 'EdDSA'));
    };
    const jti = randomUUID();
    const jrev = await poison(nc, `$KV.assertion-jti.${jtiKey('vn-customs', jti)}`, random());
    const refused = await http(c, '/v1/inbox', { headers: { authorization: `Bearer ${await withJti(jti)}` } });
    t.equal(refused.status, 401, 'a jti with junk under it is refused (junk grants nothing)');
    await expectFinding(
      t,
      c,
      'replay-guard',
      `assertion-jti/${jtiKey('vn-customs', jti)}@${jrev}`,
      'random bytes under a jti',
    );
    // A used jti, then a delete marker over it: the jti stays used.
    const used = await withJti(randomUUID());
    t.equal(
      (await http(c, '/v1/inbox', { headers: { authorization: `Bearer ${used}` } })).status,
      200,
      'a fresh assertion is accepted',
    );
    const usedJti = JSON.parse(Buffer.from(used.split('.')[1]!, 'base64url').toString('utf8')).jti as string;
    await poison(nc, `$KV.assertion-jti.${jtiKey('vn-customs', usedJti)}`, delMarker());
    t.equal(
      (await http(c, '/v1/inbox', { headers: { authorization: `Bearer ${used}` } })).status,
      401,
      'replayed after a delete marker over its jti: still refused',
    );
  });

  await t.test(
    'afterwards: no 500 anywhere, the metric counts every source, the next notice goes through',
    async (t) => {
      for (const s of [
        'registry',
        'broker-keys',
        'leases',
        'replay-guard',
        'notices',
        'deliveries',
        'acks',
        'registry-events',
        'deadletter',
      ])
        t.ok((await findingsCount(c, s)) > 0, `liaison_integrity_findings_total{source="${s}"} counts it`);
      const ready = await readyz(c);
      t.equal(ready.status, 200, '/readyz: 200 (the gateway still ingests)');
      t.equal(ready.json.status, 'degraded');
      t.notOk(JSON.stringify(ready.json).includes('No Messages'), 'no content in /readyz');
      await nextNoticeGoesThrough(t, c, 'at the end');
      t.notOk(
        c.statuses.some((s) => s >= 500),
        `no client request answered 5xx (${[...new Set(c.statuses)].join(', ')})`,
      );
      t.notOk(
        g.logLines.some((l) => l.includes('"level":50') && l.includes('No Messages')),
        'findings are logged without content',
      );
      t.ok(
        g.logLines.some((l) => l.includes('"event":"integrity-finding"') && l.includes('"level":50')),
        'findings are logged at error level',
      );
    },
  );

  await t.test('a restart on the poisoned registry and keyring starts, and keeps the last good records', async (t) => {
    const dataDir = g.dataDir;
    const restartedAt = new Date().toISOString();
    await g.gw.close();
    const again = await gateway(t, nats, overrides, dataDir);
    const c2: Ctx = { ...c, g: again.g, url: again.url };
    t.ok(
      again.g.gw.registry.snapshot.agency('th-customs'),
      'th-customs is still a member after the restart (its last good record, from history)',
    );
    await expectFinding(t, c2, 'registry', /^registry@\d+$/, 'after the restart', restartedAt);
    await expectFinding(t, c2, 'broker-keys', /^broker-keys@\d+$/, 'the junk keyring, after the restart', restartedAt);
    await nextNoticeGoesThrough(t, c2, 'after the restart');
    t.notOk(
      c2.statuses.some((s) => s >= 500),
      'no 5xx after the restart',
    );
  });
}

t.test('background thread on (as in production)', (t) => scenario(t, {}));

t.test('background thread off: the issue repro and junk notices and deliveries', async (t) => {
  scenarioStart = new Date().toISOString();
  const nats = await startTestNats(t);
  const { g, url } = await gateway(t, nats, { backgroundThread: false });
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const c: Ctx = { nats, g, url, nc, statuses: [] };
  await registryRepro(t, c);
  const n = await poison(nc, 'notices.mekong-dragon-6.VN.seizure-report', status404());
  await expectFinding(t, c, 'notices', `NOTICES#${n}`, 'a 404 status message in NOTICES (router on this thread)');
  const d = await poison(nc, 'deliveries.th-customs.mekong-dragon-6.VN', status404());
  await nextNoticeGoesThrough(t, c, 'background off');
  await expectFinding(t, c, 'deliveries', `DELIVERIES#${d}`, 'a 404 status message in DELIVERIES');
  t.notOk(
    c.statuses.some((s) => s >= 500),
    'no 5xx',
  );
});

t.test(
  "webhooks: junk in a webhook agency's deliveries and in its redelivery requests is terminated with a finding; the next delivery is posted",
  async (t) => {
    scenarioStart = new Date().toISOString();
    const nats = await startTestNats(t);
    const { g, url } = await gateway(t, nats, {
      webhookBackoffBaseMs: 50,
      webhookBackoffMaxMs: 200,
      webhookMaxAttempts: 2,
      webhookTimeoutMs: 2000,
    });
    const nc = await connect({ servers: nats.url });
    t.teardown(() => nc.close());
    const c: Ctx = { nats, g, url, nc, statuses: [] };
    const th = await webhookReceiver(t, (_n, _q, res) => (res.writeHead(204), res.end()));
    await g.gw.registry.putAgency({ ...g.gw.registry.snapshot.agency('th-customs')!, webhook: { url: th.url } });
    await webhookConsumerReady(g.gw.bus, 'th-customs');
    await waitFor(
      () => (g.gw.registry.snapshot.agency('th-customs')?.webhook ? true : undefined),
      'the webhook in the registry',
    );
    const junk = [
      await poison(nc, 'deliveries.th-customs.mekong-dragon-6.VN', status404()),
      await poison(nc, 'deliveries.th-customs.mekong-dragon-6.VN', random()),
    ];
    const redeliver = await poison(nc, 'redeliver.webhook.th-customs', random());
    const notice = fromVn();
    const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
    t.equal(res.status, 202);
    await waitFor(() => (th.got.length >= 1 ? true : undefined), 'the real delivery to be posted');
    t.equal(th.got.length, 1, 'one POST: the junk was not posted, and did not hold the queue (max one in hand)');
    const claims = await verifyWebhook(th.got[0]!.body, g.jwks, 'th-customs');
    t.equal(claims.notice_id, notice.id, 'and it is the real notice');
    for (const s of junk)
      await expectFinding(t, c, 'deliveries', `DELIVERIES#${s}`, `junk delivery ${s} to a webhook agency`);
    await expectFinding(t, c, 'deadletter', `DEADLETTER#${redeliver}`, 'junk redelivery request');
    const info = await g.gw.bus.jsm.consumers.info(STREAMS.deliveries, webhookConsumer('th-customs'));
    t.equal(info.num_ack_pending, 0, 'nothing left unacked on the webhook consumer');
  },
);
