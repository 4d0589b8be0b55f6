import t, { type Test } from 'tap';
import { CompactSign } from 'jose';
import { encryptToBroker, signNotice } from '../broker/agency-client/seal.js';
import { parseStrictJson } from '../broker/core/strict-json.js';
import { STREAMS } from '../broker/nats/streams.js';
import type { Agency } from '../broker/registry/model.js';
import { b64, flipPart, forgeJws, withHeader } from './helpers/forge.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { bodyLimitBytes: 64 * 1024, maxJsonDepth: 16 });
const brokerX = g.jwks.keys.find((k) => k.use === 'enc' && k.crv === 'X25519')!;

const fromVn = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
    tlp: 'AMBER',
    ...patch,
  });
const logSize = async () => (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.messages;
const noticesSize = async () => (await g.gw.bus.jsm.streams.info(STREAMS.notices)).state.messages;

/** Post, expect a problem with this status and code, and check that nothing reached NOTICES or LOG. */
async function refused(t: Test, body: string, status: number, code: string, contentType = 'application/jose') {
  const [l, n] = [await logSize(), await noticesSize()];
  const res = await g.post(body, contentType);
  t.equal(res.status, status, `status ${status}`);
  t.equal(res.json.code, code, `code ${code}`);
  t.equal(res.json.type, `urn:liaison:problem:${code}`);
  t.match(String(res.headers['content-type']), /^application\/problem\+json/);
  t.equal(await logSize(), l, 'nothing logged');
  t.equal(await noticesSize(), n, 'nothing stored');
  return res;
}

const sealRaw = async (jws: string) => encryptToBroker(jws, brokerX);

t.test('envelope', async (t) => {
  await refused(t, 'hello, this is not JOSE', 400, 'envelope-malformed');
  await refused(t, '', 400, 'envelope-malformed');
  await refused(t, 'a.b.c.d.e', 400, 'envelope-malformed');
  await refused(t, '{"id":"x"}', 415, 'unsupported-media-type', 'application/json');
  await refused(t, 'x', 415, 'unsupported-media-type', 'text/plain');
  const jws = await signNotice(new TextEncoder().encode(JSON.stringify(fromVn())), g.creds('vn-customs').signing);
  const r = await refused(t, jws, 400, 'envelope-malformed');
  t.match(r.json.detail, /JWS/, 'an unencrypted JWS is named as such');
  await refused(t, await sealRaw('not a jws'), 400, 'envelope-malformed');
});

t.test('JWE to an unknown key id', async (t) => {
  const { jwe } = await g.seal(fromVn(), 'vn-customs', { brokerKey: { ...brokerX, kid: 'someone-elses-key' } });
  await refused(t, jwe, 400, 'key-unknown');
});

t.test('JWE encrypted to another key under the broker kid', async (t) => {
  const other = g.creds('th-customs').encryption; // an X25519 key that is not the broker's
  const { d: _d, ...pub } = other;
  const { jwe } = await g.seal(fromVn(), 'vn-customs', { brokerKey: { ...pub, kid: brokerX.kid } });
  await refused(t, jwe, 400, 'decrypt-failed');
});

t.test('tampered ciphertext, tag, IV, encrypted key or protected header', async (t) => {
  const { jwe } = await g.seal(fromVn(), 'vn-customs');
  for (const [i, what] of [
    [1, 'encrypted key'],
    [2, 'iv'],
    [3, 'ciphertext'],
    [4, 'tag'],
  ] as const) {
    const r = await refused(t, flipPart(jwe, i), 400, 'decrypt-failed');
    t.equal(r.json.title, 'The envelope could not be decrypted.', `one fixed answer for ${what}`);
  }
  await refused(t, withHeader(jwe, { typ: 'changed' }), 400, 'decrypt-failed');
});

t.test('algorithms: alg none, symmetric HS256, RSA, dir', async (t) => {
  const payload = new TextEncoder().encode(JSON.stringify(fromVn()));
  const none = `${b64(JSON.stringify({ alg: 'none', kid: 'vn-customs-sig-1' }))}.${b64(payload)}.`;
  await refused(t, await sealRaw(none), 400, 'alg-not-allowed');
  const hmacKey = new TextEncoder().encode('a shared secret that must never be accepted!!');
  const hs = await new CompactSign(payload).setProtectedHeader({ alg: 'HS256', kid: 'vn-customs-sig-1' }).sign(hmacKey);
  await refused(t, await sealRaw(hs), 400, 'alg-not-allowed');
  const { jwe } = await g.seal(fromVn(), 'vn-customs');
  await refused(t, withHeader(jwe, { alg: 'RSA1_5' }), 400, 'alg-not-allowed');
  await refused(t, withHeader(jwe, { alg: 'dir' }), 400, 'alg-not-allowed');
  await refused(t, withHeader(jwe, { enc: 'A128CBC-HS256' }), 400, 'alg-not-allowed');
  // A JWS whose alg does not match the registered key type (ES256 header, Ed25519 key).
  const mismatched = forgeJws({ alg: 'ES256', kid: 'vn-customs-sig-1' }, payload, g.creds('vn-c04').signing);
  await refused(t, await sealRaw(mismatched), 400, 'signature-invalid');
});

t.test('forbidden headers: zip, crit, jku, x5u, jwk, x5c', async (t) => {
  const { jwe } = await g.seal(fromVn(), 'vn-customs');
  await refused(t, withHeader(jwe, { zip: 'DEF' }), 400, 'header-forbidden');
  await refused(t, withHeader(jwe, { crit: ['exp'], exp: 1 }), 400, 'header-forbidden');
  await refused(t, withHeader(jwe, { jku: 'https://attacker.example/jwks.json' }), 400, 'header-forbidden');
  await refused(t, withHeader(jwe, { unknownparam: 1 }), 400, 'header-forbidden');
  const payload = new TextEncoder().encode(JSON.stringify(fromVn()));
  const signing = g.creds('vn-customs').signing;
  const base = { alg: 'EdDSA', kid: signing.kid };
  const { d: _d, ...pub } = signing;
  for (const extra of [
    { crit: ['b64'], b64: false },
    { crit: ['x-unknown'], 'x-unknown': 1 },
    { jku: 'https://attacker.example/k' },
    { x5u: 'https://attacker.example/c' },
    { jwk: pub },
    { x5c: ['MIIB'] },
    { zip: 'DEF' },
  ]) {
    const r = await refused(
      t,
      await sealRaw(forgeJws({ ...base, ...extra }, payload, signing)),
      400,
      'header-forbidden',
    );
    t.notMatch(JSON.stringify(r.json), /attacker/, 'the problem does not echo the header');
  }
});

t.test('signatures', async (t) => {
  const notice = fromVn();
  const jws = await signNotice(new TextEncoder().encode(JSON.stringify(notice)), g.creds('vn-customs').signing);
  const [h, p, s] = jws.split('.') as [string, string, string];
  const other = b64(JSON.stringify({ ...notice, summary: 'altered after signing' }));
  await refused(t, await sealRaw(`${h}.${other}.${s}`), 400, 'signature-invalid');
  await refused(t, await sealRaw(`${h}.${p}.${flipPart(jws, 2).split('.')[2]}`), 400, 'signature-invalid');
  // A key id no one registered.
  await refused(t, await sealRaw(withHeader(jws, { kid: 'nobody-sig-1' })), 400, 'key-unknown');
  // An encryption key id used as a signing key id.
  await refused(
    t,
    await sealRaw(
      forgeJws({ alg: 'EdDSA', kid: 'vn-customs-enc-1' }, JSON.stringify(notice), g.creds('vn-customs').signing),
    ),
    400,
    'key-unknown',
  );
});

t.test('a valid signature by an agency other than the origin', async (t) => {
  // th-customs signs a notice that claims to come from vn-customs.
  const { jwe } = await g.seal(fromVn(), 'th-customs');
  const r = await refused(t, jwe, 403, 'policy-denied');
  t.match(r.json.detail, /origin\.agency/);
});

t.test('revoked and expired keys', async (t) => {
  const snapshot = () => g.gw.registry.snapshot;
  const waitFor = async (pred: () => boolean) => {
    for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(pred(), 'registry change seen by the running gateway within a second');
  };
  const la = structuredClone(snapshot().agency('la-customs')) as Agency;
  const { jwe: before } = await g.seal(
    sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'LA', agency: 'la-customs' },
      addressees: ['VN'],
      tlp: 'GREEN',
    }),
    'la-customs',
  );
  la.keys = la.keys.map((k) =>
    k.use === 'sig' ? { ...k, status: 'revoked', revoked_at: new Date(Date.now() - 1000).toISOString() } : k,
  );
  await g.gw.registry.putAgency(la);
  await waitFor(() => snapshot().key('la-customs-sig-1')?.key.status === 'revoked');
  await refused(t, before, 403, 'key-revoked');

  const cn = structuredClone(snapshot().agency('cn-customs')) as Agency;
  cn.keys = cn.keys.map((k) =>
    k.use === 'sig' ? { ...k, not_after: new Date(Date.now() - 60_000).toISOString() } : k,
  );
  await g.gw.registry.putAgency(cn);
  await waitFor(() => snapshot().key('cn-customs-sig-1')?.key.not_after !== undefined);
  const { jwe } = await g.seal(
    sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'CN', agency: 'cn-customs' },
      addressees: ['VN'],
      tlp: 'GREEN',
    }),
    'cn-customs',
  );
  await refused(t, jwe, 403, 'key-revoked');
});

t.test('schema-invalid notices list the failing JSON paths', async (t) => {
  const n = fromVn();
  n.body.items[0].quantity = { value: '12', unit: 'kg' };
  delete n.priority;
  const r = await refused(t, (await g.seal(n, 'vn-customs')).jwe, 422, 'schema-invalid');
  const paths = (r.json.errors as { path: string }[]).map((e) => e.path);
  t.ok(paths.includes('/priority') || paths.includes(''), 'missing header field reported');
  t.notMatch(JSON.stringify(r.json), new RegExp(n.summary.slice(0, 20)), 'no notice content in the problem');
  const bad = fromVn();
  bad.body.items[0].quantity = { value: '12', unit: 'kg' };
  const r2 = await refused(t, (await g.seal(bad, 'vn-customs')).jwe, 422, 'schema-invalid');
  t.ok(
    (r2.json.errors as { path: string }[]).some((e) => e.path === '/body/items/0/quantity/value'),
    'a string is not coerced to a number',
  );
});

t.test('policy', async (t) => {
  const send = async (patch: Record<string, unknown>, agency = 'vn-customs') =>
    (await g.seal(fromVn(patch), agency)).jwe;
  let r = await refused(t, await send({ origin: { country: 'TH', agency: 'vn-customs' } }), 403, 'policy-denied');
  t.match(r.json.detail, /country/);
  r = await refused(t, await send({ operation: 'no-such-operation' }), 403, 'policy-denied');
  t.match(
    r.json.detail,
    /not a member of the operation, or there is no such operation/,
    'a missing operation reads as one of others (test/probing.test.ts)',
  );
  r = await refused(t, await send({ operation: 'oic-channel', addressees: ['GB'] }), 403, 'policy-denied');
  t.match(r.json.detail, /not a member/);
  r = await refused(t, await send({ addressees: ['GB'] }), 403, 'policy-denied');
  t.match(r.json.detail, /addressee/);
  await refused(t, await send({ addressees: ['gb-border-force'] }), 403, 'policy-denied');
  r = await refused(t, await send({ tlp: 'RED', addressees: ['*'] }), 403, 'policy-denied');
  t.match(r.json.detail, /RED/);
  await refused(t, await send({ tlp: 'AMBER+STRICT', addressees: ['TH'] }), 403, 'policy-denied');
  await refused(t, await send({ addressees: ['*', 'TH'] }), 422, 'schema-invalid');
  // an inactive operation
  await g.gw.registry.putOperation({
    id: 'closed-op',
    name: 'A finished campaign',
    status: 'active',
    members: ['vn-customs', 'th-customs'],
    categories: [],
    end: '2020-12-31',
  });
  for (let i = 0; i < 100 && !g.gw.registry.snapshot.operation('closed-op'); i++)
    await new Promise((res) => setTimeout(res, 10));
  r = await refused(t, await send({ operation: 'closed-op', addressees: ['TH'] }), 403, 'policy-denied');
  t.match(r.json.detail, /not active/);
  // RED to a named agency is fine
  const ok = await g.post(await send({ tlp: 'RED', addressees: ['th-customs'] }));
  t.equal(ok.status, 202);
  t.same(ok.json.recipients, ['th-customs']);
});

t.test('freshness: created_at too old or in the future', async (t) => {
  await refused(
    t,
    (await g.seal(fromVn({ created_at: new Date(Date.now() - 2 * 3600_000).toISOString() }), 'vn-customs')).jwe,
    400,
    'replay',
  );
  await refused(
    t,
    (await g.seal(fromVn({ created_at: new Date(Date.now() + 3600_000).toISOString() }), 'vn-customs')).jwe,
    400,
    'clock-skew',
  );
  await refused(t, (await g.seal(fromVn({ created_at: 'yesterday' }), 'vn-customs')).jwe, 422, 'schema-invalid');
});

t.test('sizes and JSON shape', async (t) => {
  await refused(t, 'x'.repeat(65 * 1024), 413, 'too-large');
  const deep = fromVn();
  let v: Record<string, unknown> = {};
  deep.body.extra = v;
  for (let i = 0; i < 40; i++) v = v.n = {};
  await refused(t, (await g.seal(deep, 'vn-customs')).jwe, 400, 'json-invalid');
  const text = JSON.stringify(fromVn());
  for (const evil of [
    text.replace('{', '{"__proto__":{"admin":true},'),
    text.replace('"body":{', '"body":{"constructor":{"prototype":{}},'),
    text.replace('{', '{"tlp":"RED",'),
  ]) {
    await refused(
      t,
      (await g.seal(null, 'vn-customs', { raw: new TextEncoder().encode(evil) })).jwe,
      400,
      'json-invalid',
    );
  }
});

t.test('ids that are unsafe in a NATS subject', async (t) => {
  for (const operation of ['a.b', '*', '>', 'mekong dragon', 'mekong-dragon-6.>']) {
    const r = await refused(t, (await g.seal(fromVn({ operation }), 'vn-customs')).jwe, 422, 'schema-invalid');
    t.ok((r.json.errors as { path: string }[]).some((e) => e.path === '/operation'));
  }
  for (const agency of ['vn.customs', '*']) {
    await refused(
      t,
      (await g.seal(fromVn({ origin: { country: 'VN', agency } }), 'vn-customs')).jwe,
      422,
      'schema-invalid',
    );
  }
  await refused(t, (await g.seal(fromVn({ type: 'seizure.report' }), 'vn-customs')).jwe, 422, 'schema-invalid');
  await refused(t, (await g.seal(fromVn({ id: 'abc.>' }), 'vn-customs')).jwe, 422, 'schema-invalid');
});

t.test('the log never carries notice content or key material', async (t) => {
  const marker = 'SECRET-MARKER-7f3a';
  const { jwe } = await g.seal(fromVn({ summary: `${marker} container MSCU1234567` }), 'vn-customs');
  t.equal((await g.post(jwe)).status, 202);
  await refused(
    t,
    (await g.seal(fromVn({ summary: marker, tlp: 'RED', addressees: ['*'] }), 'vn-customs')).jwe,
    403,
    'policy-denied',
  );
  const all = g.logLines.join('\n');
  t.notOk(all.includes(marker), 'no notice content in logs');
  t.notOk(all.includes(jwe.slice(0, 40)), 'no envelope in logs');
  for (const a of ['vn-customs', 'th-customs']) {
    t.notOk(all.includes(String(g.creds(a).signing.d)), 'no private key in logs');
  }
  const line = g.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.outcome === 'accepted');
  t.match(
    line,
    { agency: 'vn-customs', status: 202, route: '/v1/notices', operation: 'mekong-dragon-6' },
    'request line has agency, notice id, outcome and timing',
  );
  t.type(line.ms, 'number');
  t.type(line.reqId, 'string');
  t.type(line.notice_id, 'string');
  const refusal = g.logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.code === 'policy-denied');
  t.equal(refusal.outcome, 'refused');
  // Log processors refuse a line with a member twice, or keep one of the two: every line of this file's refusals is strict JSON.
  const notStrict = g.logLines.filter((l) => {
    try {
      parseStrictJson(l, { maxBytes: 1 << 20, maxDepth: 16 });
      return false;
    } catch {
      return true;
    }
  });
  t.same(notStrict.slice(0, 3), [], `every one of ${g.logLines.length} log lines is JSON without a duplicate member`);
});
