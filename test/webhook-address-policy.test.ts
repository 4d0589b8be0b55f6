import t from 'tap';
import { isNonPublicAddress, isNonPublicLiteral } from '../adapters/webhook/address-policy.js';
import { webhookUrlRefusal } from '../adapters/webhook/url-policy.js';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { STREAMS } from '../broker/nats/streams.js';
import { checkWebhookUrl, postWebhook } from '../adapters/webhook/index.js';
import { loadConfig } from '../broker/config/config.js';
import { webhookConsumerReady, webhookReceiver } from './helpers/webhook-receiver.js';
import { listDeadLetters } from '../broker/routing/deadletter.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.test('which addresses are not public', async (t) => {
  for (const a of [
    '127.0.0.1',
    '127.8.9.10',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '192.0.2.7',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '2001:db8::1',
    'not-an-ip',
    '',
    // IPv6 spellings of a non-public IPv4 address: compatible, mapped in hex, translated, NAT64, 6to4; Teredo; a zone id
    '::7f00:1',
    '::127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '0:0:0:0:0:ffff:7f00:0001',
    '::ffff:0:7f00:1',
    '64:ff9b::7f00:1',
    '64:ff9b::169.254.169.254',
    '64:ff9b::a00:1',
    '2002:7f00:1::1',
    '2002:a9fe:a9fe::',
    '2001:0:4136:e378:8000:63bf:3fff:fdd2',
    'fe80::1%eth0',
  ]) {
    t.ok(isNonPublicAddress(a), `${a || '(empty)'}: refused`);
  }
  for (const a of [
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '193.0.14.129',
    '2001:4860:4860::8888',
    '2a00:1450:4001:80b::200e',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ]) {
    t.notOk(isNonPublicAddress(a), `${a}: public`);
  }
  t.ok(isNonPublicLiteral(new URL('http://[::1]:8080/x')), 'an IPv6 literal in brackets is read');
  t.ok(isNonPublicLiteral(new URL('http://169.254.169.254/latest/meta-data')), 'the metadata service is refused');
  t.notOk(isNonPublicLiteral(new URL('http://8.8.8.8/x')), 'a public literal passes');
  t.notOk(isNonPublicLiteral(new URL('https://hooks.example.org/x')), 'a name is judged when it is resolved');
});

t.test(
  'webhook URLs judged when they are set: shape, then the address unless private networks are allowed',
  async (t) => {
    const strict = { allowPrivateNetworks: false };
    for (const [url, why] of [
      ['https://user:secret@hooks.example.org/x', /carries credentials/],
      ['ftp://hooks.example.org/x', /not http\(s\)/],
      ['http://127.0.0.1:9000/hook', /non-public address/],
      ['http://[::7f00:1]/hook', /non-public address/],
      ['http://[64:ff9b::a9fe:a9fe]/latest/meta-data', /non-public address/],
      ['http://169.254.169.254/latest/meta-data', /non-public address/],
      ['http://localhost:8080/v1/admin', /localhost/],
      ['http://api.localhost/x', /localhost/],
    ] as const) {
      t.match(await webhookUrlRefusal(url, strict), why, url);
    }
    t.equal(await webhookUrlRefusal('https://8.8.8.8/hook', strict), null, 'a public literal');
    t.equal(
      await webhookUrlRefusal('http://127.0.0.1:9000/hook', { allowPrivateNetworks: true }),
      null,
      'loopback, where the operator allowed private networks',
    );
    t.match(
      await webhookUrlRefusal('https://user:pw@10.0.0.1/x', { allowPrivateNetworks: true }),
      /credentials/,
      'credentials are refused even then',
    );
  },
);

t.test('the POST never reaches a loopback receiver unless private networks are allowed', async (t) => {
  const rx = await webhookReceiver(t, (_n, _q, res) => (res.writeHead(204), res.end()));
  const byIp = await postWebhook(checkWebhookUrl(rx.url) as URL, 'x.y.z', {}, 2000);
  t.same(byIp, { ok: false, reason: 'error EADDRNOTPUBLIC' }, 'an IP literal: refused before connecting');
  const byName = await postWebhook(checkWebhookUrl(rx.url.replace('127.0.0.1', 'localhost')) as URL, 'x.y.z', {}, 2000);
  t.same(
    byName,
    { ok: false, reason: 'error EADDRNOTPUBLIC' },
    'a name that resolves to loopback: refused in the lookup',
  );
  t.equal(rx.got.length, 0, 'the receiver saw nothing');
  const allowed = await postWebhook(checkWebhookUrl(rx.url) as URL, 'x.y.z', {}, 2000, { allowPrivateNetworks: true });
  t.same(allowed, { ok: true, status: 204 }, 'allowed: delivered');
  t.equal(rx.got.length, 1);
});

t.test('the gateway refuses private networks unless configured', async (t) => {
  t.equal(loadConfig({}, { dataDir: '/tmp/x' }).webhookAllowPrivateNetworks, false, 'off by default');
  t.equal(
    loadConfig({ LIAISON_WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }, { dataDir: '/tmp/x' }).webhookAllowPrivateNetworks,
    true,
    'turned on from the environment',
  );
});

t.test(
  'end to end with the default policy: a webhook on loopback is never called, the delivery is parked with the reason',
  async (t) => {
    const nats = await startTestNats(t);
    const g = await startTestGateway(t, nats.url, {
      webhookAllowPrivateNetworks: false,
      webhookBackoffBaseMs: 50,
      webhookBackoffMaxMs: 100,
      webhookMaxAttempts: 2,
      webhookTimeoutMs: 2000,
    });
    const rx = await webhookReceiver(t);
    const th = g.gw.registry.snapshot.agency('th-customs')!;
    // Through the admin API the URL is refused when set, and nothing is logged.
    const token = await makeClientAssertion('hub-operator', g.creds('hub-operator').signing, g.config.brokerId);
    const { keys: _k, openpgp_keys: _o, changed_by: _c, ...record } = th;
    const logBefore = (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.messages;
    const set = await g.gw.app.inject({
      method: 'PUT',
      url: '/v1/admin/agencies/th-customs',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ agency: { ...record, webhook: { url: rx.url } } }),
    });
    t.equal(set.statusCode, 400, 'a loopback webhook is refused when set');
    t.match(set.json().detail, /agency\.webhook\.url: .*non-public address/);
    t.equal((await g.gw.bus.jsm.streams.info(STREAMS.log)).state.messages, logBefore, 'nothing logged');
    t.equal(g.gw.registry.snapshot.agency('th-customs')?.webhook, undefined, 'nor set');
    // A record written around the API (an older registry, a hand edit) is still refused at each delivery:
    await g.gw.registry.putAgency({ ...th, webhook: { url: rx.url } });
    await webhookConsumerReady(g.gw.bus, 'th-customs');
    const notice = sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
      tlp: 'AMBER',
    });
    t.equal((await g.post((await g.seal(notice, 'vn-customs')).jwe)).status, 202);
    const parked = await waitFor(
      async () => {
        const d = await listDeadLetters(g.gw.bus);
        return d.length ? d : undefined;
      },
      'the dead letter',
      15_000,
    );
    t.match(parked, [{ agency: 'th-customs', notice_id: notice.id, last_error: 'error EADDRNOTPUBLIC' }]);
    t.equal(rx.got.length, 0, 'the loopback receiver was never called');
  },
);
