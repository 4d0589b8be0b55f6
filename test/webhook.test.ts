import t from 'tap';
import { sleep, waitFor as waitUntil } from './helpers/wait.js';
import {
  checkWebhookUrl,
  postWebhook,
  verifyWebhook,
  backoffMs,
  WEBHOOK_TYP,
  type WebhookClaims,
} from '../adapters/webhook/index.js';
import { openDelivery } from '../broker/agency-client/open-delivery.js';
import { run } from '../broker/cli/liaison.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { webhookConsumerReady, webhookReceiver } from './helpers/webhook-receiver.js';

t.setTimeout(120_000);
/** These tests wait up to 15 s for webhook retries and checkpoints. */
const waitFor = <T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000) =>
  waitUntil(fn, what, ms);

/** These receivers listen on loopback, which postWebhook refuses unless told (webhook-address-policy.test.ts). */
const LOOPBACK = { allowPrivateNetworks: true };
const receiver = (answer: Parameters<typeof webhookReceiver>[1]) => webhookReceiver(t, answer);

t.test('URL checks and the bounded POST (hostile receivers)', async (t) => {
  t.type(checkWebhookUrl('ftp://127.0.0.1/x'), 'string', 'ftp refused');
  t.type(checkWebhookUrl('file:///etc/passwd'), 'string', 'file refused');
  t.type(checkWebhookUrl('http://user:pw@127.0.0.1/x'), 'string', 'credentials in the URL refused');
  t.type(checkWebhookUrl('not a url'), 'string', 'garbage refused');
  t.type(checkWebhookUrl(`http://127.0.0.1/${'a'.repeat(3000)}`), 'string', 'too long refused');
  t.ok(checkWebhookUrl('https://hooks.example.org/liaison') instanceof URL, 'https accepted');

  const target = await receiver((_n, _q, res) => res.end('ok'));
  const redirect = await receiver((_n, _q, res) => (res.writeHead(302, { location: target.url }), res.end()));
  const out = await postWebhook(
    checkWebhookUrl(redirect.url) as URL,
    'x.y.z',
    { 'content-type': 'application/jose' },
    2000,
    LOOPBACK,
  );
  t.same(out, { ok: false, status: 302, reason: 'http 302' }, 'a redirect is a failure');
  t.equal(target.got.length, 0, 'the redirect is not followed');

  const huge = await receiver((_n, _q, res) => {
    res.writeHead(200);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const more = () => {
      while (sent < 200 && res.write(chunk)) sent++;
      if (sent < 200) res.once('drain', more);
      else res.end();
    };
    more();
  });
  const big = await postWebhook(checkWebhookUrl(huge.url) as URL, 'x.y.z', {}, 2000, LOOPBACK);
  t.same(big, { ok: true, status: 200 }, 'a 2xx counts; the (12 MiB) body is not read');

  const silent = await receiver(() => undefined); // never answers
  const started = Date.now();
  const slow = await postWebhook(checkWebhookUrl(silent.url) as URL, 'x.y.z', {}, 300, LOOPBACK);
  t.same(slow, { ok: false, reason: 'timeout' }, 'a receiver that never answers times out');
  t.ok(Date.now() - started < 2000, 'within the bound');

  const refused = await postWebhook(new URL('http://127.0.0.1:1/'), 'x', {}, 1000, LOOPBACK);
  t.equal(refused.ok, false, 'connection refused is a failure');
  t.match((refused as { reason: string }).reason, /^error E/, 'named by its error code only');

  for (let a = 1; a <= 12; a++) {
    const d = backoffMs(a, 100, 5000);
    const cap = Math.min(5000, 100 * 2 ** (a - 1));
    t.ok(d >= cap / 2 && d <= cap, `backoff after ${a} failures within [${cap / 2}, ${cap}]`);
  }
  t.equal(
    backoffMs(3, 100, 5000, () => 0),
    200,
    'lower half fixed',
  );
  t.equal(
    backoffMs(3, 100, 5000, () => 1),
    400,
    'upper bound',
  );
});

t.test('webhook delivery end to end', async (t) => {
  const nats = await startTestNats(t);
  const g = await startTestGateway(t, nats.url, {
    leaseTtlSeconds: 3,
    routerAckWaitSeconds: 2,
    webhookBackoffBaseMs: 50,
    webhookBackoffMaxMs: 200,
    webhookMaxAttempts: 3,
    webhookTimeoutMs: 2000,
  });
  const jwks = g.jwks;

  // TH fails twice, then accepts; KH always fails (until it recovers); LA has a webhook but is not addressed.
  let khUp = false;
  const th = await receiver((n, _q, res) => (res.writeHead(n <= 2 ? 503 : 204), res.end()));
  const kh = await receiver((_n, _q, res) => (res.writeHead(khUp ? 200 : 500), res.end('{"error":"down"}')));
  const la = await receiver((_n, _q, res) => (res.writeHead(200), res.end()));
  for (const [id, r] of [
    ['th-customs', th],
    ['kh-police-adp', kh],
    ['la-customs', la],
  ] as const) {
    const a = g.gw.registry.snapshot.agency(id)!;
    await g.gw.registry.putAgency({ ...a, webhook: { url: r.url } });
  }
  for (const id of ['th-customs', 'kh-police-adp', 'la-customs']) await webhookConsumerReady(g.gw.bus, id);
  t.ok(g.gw.webhooks?.leading, 'this gateway holds the webhook lease');

  const notice = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
    tlp: 'AMBER',
  });
  const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
  t.equal(res.status, 202, 'posted');

  const originKeys = async (id: string) => g.gw.registry.snapshot.agency(id)!.keys;
  const check = async (body: string, agency: string) => {
    const claims: WebhookClaims = await verifyWebhook(body, jwks, agency);
    t.equal(claims.notice_id, notice.id, `${agency}: the broker signed this notice's delivery`);
    t.equal(claims.log_index, res.json.log_index, `${agency}: with its log index`);
    const header = JSON.parse(Buffer.from(body.split('.')[0]!, 'base64url').toString('utf8')) as {
      typ: string;
      kid: string;
    };
    t.equal(header.typ, WEBHOOK_TYP);
    const opened = await openDelivery(claims, g.creds(agency).encryption, originKeys);
    t.same(opened.notice, notice, `${agency}: decrypts it and verifies vn-customs' signature`);
    await t.rejects(
      verifyWebhook(body, jwks, 'la-customs'),
      { code: 'wrong-recipient' },
      'a body for one agency is refused by another',
    );
    const tampered = body.slice(0, -4) + (body.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await t.rejects(
      verifyWebhook(tampered, jwks, agency),
      { code: 'signature-invalid' },
      'a changed body does not verify',
    );
    return claims;
  };

  await waitFor(() => (th.got.length >= 3 ? true : undefined), 'TH to get the delivery after its failures');
  t.equal(th.got.length, 3, 'TH: two failed tries, then the one that succeeded');
  for (const r of th.got) {
    t.equal(r.headers['content-type'], 'application/jose');
    t.equal(r.headers['idempotency-key'], `${notice.id}:th-customs`, 'the same idempotency key on every try');
  }
  await check(th.got[2]!.body, 'th-customs');

  // KH: every try fails -> dead letter.
  const io = () => {
    const o = { stdout: '', stderr: '' };
    return { o, sink: { out: (s: string) => void (o.stdout += s), err: (s: string) => void (o.stderr += s) } };
  };
  const listed = await waitFor(async () => {
    const j = io();
    if ((await run(['webhook', 'deadletters', '--nats', nats.url, '--json'], j.sink)) !== 0)
      throw new Error(j.o.stderr);
    const d = (
      JSON.parse(j.o.stdout) as {
        deadletters: { seq: number; agency: string; notice_id: string; attempts: number; last_error: string }[];
      }
    ).deadletters;
    return d.length ? d : undefined;
  }, 'the dead letter');
  t.equal(kh.got.length, 3, 'KH was tried webhookMaxAttempts times');
  t.equal(listed.length, 1, 'one dead letter');
  t.match(
    listed[0],
    { agency: 'kh-police-adp', notice_id: notice.id, attempts: 3, last_error: 'http 500' },
    'visible with its agency, notice, tries and last error',
  );
  const text = io();
  await run(['webhook', 'deadletters', '--nats', nats.url], text.sink);
  t.match(text.o.stdout, /kh-police-adp\s+notice/, 'listed for a human too');
  t.notMatch(g.logLines.join('\n'), /"error":"down"/, "the receiver's answer is never logged");

  // LA was not addressed: its webhook gets nothing.
  await sleep(300);
  t.equal(la.got.length, 0, 'LA (not addressed) gets no webhook');

  // KH recovers; the operator re-delivers.
  khUp = true;
  const r = io();
  t.equal(
    await run(['webhook', 'redeliver', '--nats', nats.url, '--seq', String(listed[0]!.seq)], r.sink),
    0,
    r.o.stderr,
  );
  t.match(r.o.stdout, /queued for redelivery/);
  await waitFor(() => (kh.got.length >= 4 ? true : undefined), 'KH to get the re-delivery');
  const claims = await check(kh.got[3]!.body, 'kh-police-adp');
  t.ok(claims.cursor > 0, 'the re-delivery keeps the original cursor');
  const after = io();
  await run(['webhook', 'deadletters', '--nats', nats.url, '--json'], after.sink);
  t.same(JSON.parse(after.o.stdout), { deadletters: [] }, 'the dead-letter is empty after re-delivery');
  const again = io();
  t.equal(
    await run(['webhook', 'redeliver', '--nats', nats.url, '--seq', String(listed[0]!.seq)], again.sink),
    1,
    'a dead letter already re-delivered cannot be re-delivered twice',
  );
  await sleep(300);
  t.equal(th.got.length, 3, 'TH got nothing more');
  t.equal(kh.got.length, 4, 'KH got exactly one more');
});
