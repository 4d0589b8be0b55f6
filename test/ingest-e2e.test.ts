import t from 'tap';
import { createHash } from 'node:crypto';
import { openStoredNotice } from '../broker/vault/open.js';
import { verifyReceipt } from '../broker/ingest/notice-receipt.js';
import { decodeEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url);

const fromVn = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
    tlp: 'AMBER',
    ...patch,
  });

const streamCount = async (name: string) => (await g.gw.bus.jsm.streams.info(name)).state.messages;

t.test('a signed, encrypted notice is stored, logged and receipted', async (t) => {
  const notice = fromVn();
  const { jwe, jws } = await g.seal(notice, 'vn-customs');
  const res = await g.post(jwe);
  t.equal(res.status, 202, JSON.stringify(res.json));
  t.equal(res.json.notice_id, notice.id);
  t.same(res.json.recipients, ['kh-police-adp', 'th-customs']);
  t.equal(
    res.json.sha256,
    createHash('sha256').update(jws).digest('hex'),
    'the commitment is the SHA-256 of the signed JWS as received',
  );

  const claims = await verifyReceipt(res.json.receipt, g.jwks);
  t.equal(claims.notice_id, notice.id);
  t.equal(claims.log_index, res.json.log_index);
  t.equal(claims.iss, g.config.brokerId);

  const logged = await g.gw.bus.getMessage(STREAMS.log, res.json.log_index + 1);
  t.ok(logged, 'the receipt log index names the LOG entry');
  const entry = decodeEntry(logged!.data);
  t.match(entry, {
    kind: 'notice',
    notice_id: notice.id,
    sha256: res.json.sha256,
    signer_kid: 'vn-customs-sig-1',
    origin: { country: 'VN', agency: 'vn-customs' },
    operation: 'mekong-dragon-6',
    type: 'seizure-report',
    tlp: 'AMBER',
  });
  t.notOk(
    new TextDecoder().decode(logged!.data).includes(notice.summary),
    'the log holds a commitment, not the content',
  );
});

t.test('an Arabic-language notice is stored and read back byte-exact', async (t) => {
  const summary = 'ضبط ١٢ كغ من الميثامفيتامين في حاوية مبردة — ميناء هاي فونغ؛ تحقق مشترك مطلوب';
  const raw = new TextEncoder().encode(JSON.stringify({ ...fromVn({ language: 'ar', summary }) }, null, 1));
  const notice = JSON.parse(new TextDecoder().decode(raw));
  const { jwe, jws } = await g.seal(notice, 'vn-customs', { raw });
  const res = await g.post(jwe);
  t.equal(res.status, 202);
  const before = await streamCount(STREAMS.notices);
  const stored = await g.gw.bus.getMessage(STREAMS.notices, before);
  t.ok(stored);
  t.notOk(Buffer.from(stored!.data).includes(Buffer.from(jws)), 'NOTICES holds it sealed, not in clear');
  const opened = await openStoredNotice(g.gw.bus, g.gw.keyring, notice.id, stored!.data);
  t.equal(opened.kind, 'sealed');
  t.equal(
    opened.kind === 'sealed' && new TextDecoder().decode(opened.signed),
    jws,
    'opened, it is the signed JWS exactly as sent',
  );
  const payload = Buffer.from(jws.split('.')[1] as string, 'base64url');
  t.ok(Buffer.compare(payload, Buffer.from(raw)) === 0, 'the signed payload bytes are the bytes the agency wrote');
  t.equal(JSON.parse(payload.toString('utf8')).summary, summary);
  t.equal(stored!.subject, 'notices.mekong-dragon-6.VN.seizure-report');
});

t.test('a retry with the same id and bytes returns the same receipt and writes nothing', async (t) => {
  const { jwe } = await g.seal(fromVn(), 'vn-customs');
  const first = await g.post(jwe);
  t.equal(first.status, 202);
  const [n, l] = [await streamCount(STREAMS.notices), await streamCount(STREAMS.log)];
  const again = await g.post(jwe);
  t.equal(again.status, 202);
  t.equal(again.json.receipt, first.json.receipt, 'byte-identical receipt');
  t.equal(again.headers['liaison-duplicate'], 'true');
  t.equal(await streamCount(STREAMS.notices), n);
  t.equal(await streamCount(STREAMS.log), l);
});

t.test('a retry re-encrypted (same signed bytes, new JWE) is also idempotent', async (t) => {
  const notice = fromVn();
  const raw = new TextEncoder().encode(JSON.stringify(notice));
  const a = await g.seal(notice, 'vn-customs', { raw });
  const first = await g.post(a.jwe);
  const b = await g.seal(notice, 'vn-customs', { raw, keyManagement: 'ECDH-ES' });
  t.not(a.jwe, b.jwe);
  const again = await g.post(b.jwe);
  t.equal(again.status, 202);
  t.equal(again.json.receipt, first.json.receipt);
});

t.test('the same id with other bytes is 409 and writes nothing', async (t) => {
  const notice = fromVn();
  const first = await g.post((await g.seal(notice, 'vn-customs')).jwe);
  t.equal(first.status, 202);
  const [n, l] = [await streamCount(STREAMS.notices), await streamCount(STREAMS.log)];
  const other = await g.post((await g.seal({ ...notice, summary: 'changed' }, 'vn-customs')).jwe);
  t.equal(other.status, 409);
  t.equal(other.json.code, 'duplicate-conflict');
  t.equal(other.headers['content-type'], 'application/problem+json; charset=utf-8');
  t.equal(await streamCount(STREAMS.notices), n);
  t.equal(await streamCount(STREAMS.log), l);
});

t.test('every combination of key management, curve and signature algorithm is accepted', async (t) => {
  for (const crv of ['X25519', 'P-256'] as const) {
    for (const keyManagement of ['ECDH-ES+A256KW', 'ECDH-ES'] as const) {
      for (const agency of ['vn-customs', 'vn-c04']) {
        // vn-customs signs with EdDSA (Ed25519), vn-c04 with ES256
        const brokerKey = g.jwks.keys.find((k) => k.use === 'enc' && k.crv === crv)!;
        const origin = agency === 'vn-customs' ? { country: 'VN', agency } : { country: 'VN', agency };
        const { jwe } = await g.seal(fromVn({ origin }), agency, { brokerKey, keyManagement });
        const res = await g.post(jwe);
        t.equal(res.status, 202, `${crv} ${keyManagement} ${agency}`);
      }
    }
  }
});

t.test('GET /v1/keys, /healthz and /readyz', async (t) => {
  const keys = await g.gw.app.inject({ method: 'GET', url: '/v1/keys' });
  t.equal(keys.statusCode, 200);
  const jwks = keys.json();
  t.equal(jwks.broker, g.config.brokerId);
  t.ok(jwks.keys.some((k: any) => k.use === 'sig' && k.crv === 'Ed25519'));
  t.ok(jwks.keys.some((k: any) => k.use === 'enc' && k.crv === 'X25519'));
  t.ok(jwks.keys.some((k: any) => k.use === 'enc' && k.crv === 'P-256'));
  t.notOk(JSON.stringify(jwks).includes('"d"'), 'no private key material');
  t.equal((await g.gw.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  const ready = await g.gw.app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.equal(ready.json().status, 'ready');
  const missing = await g.gw.app.inject({ method: 'GET', url: '/v1/nothing' });
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().code, 'not-found');
});
