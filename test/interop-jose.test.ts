import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { publicPart } from '../broker/keys/jwk.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { flipPart } from './helpers/forge.js';
import { ENTRY_SIGNATURE_HEADER } from '../broker/log/entry-signature.js';
import { STREAMS } from '../broker/nats/streams.js';

/** python3-jwcrypto: a JOSE implementation independent of the jose package the broker uses. */
const tool = join(import.meta.dirname, 'interop', 'jwcrypto_tool.py');
const py = (cmd: string, input: unknown) =>
  spawnSync('/usr/bin/python3', [tool, cmd], { input: JSON.stringify(input), encoding: 'utf8', timeout: 30_000 });

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url);
const notice = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'GREEN',
  });

t.test('a receipt verifies with python3-jwcrypto against GET /v1/keys', async (t) => {
  const n = notice();
  const res = await g.post((await g.seal(n, 'vn-customs')).jwe);
  t.equal(res.status, 202);
  const jwks = (await g.gw.app.inject({ method: 'GET', url: '/v1/keys' })).json();
  const out = py('verify-receipt', { jwks, receipt: res.json.receipt });
  t.equal(out.status, 0, out.stderr);
  const claims = JSON.parse(out.stdout);
  t.equal(claims.notice_id, n.id);
  t.equal(claims.log_index, res.json.log_index);
  const bad = py('verify-receipt', { jwks, receipt: flipPart(res.json.receipt, 1) });
  t.equal(bad.status, 1, 'a changed receipt does not verify in jwcrypto either');
});

t.test(
  'a LOG entry signature (detached-payload JWS) verifies with python3-jwcrypto against GET /v1/keys',
  async (t) => {
    const res = await g.post((await g.seal(notice(), 'vn-customs')).jwe);
    t.equal(res.status, 202);
    const m = await g.gw.bus.getMessage(STREAMS.log, res.json.log_index + 1);
    const signature = m!.header.get(ENTRY_SIGNATURE_HEADER);
    const jwks = (await g.gw.app.inject({ method: 'GET', url: '/v1/keys' })).json();
    const entry_b64 = Buffer.from(m!.data).toString('base64url');
    const out = py('verify-entry', { jwks, entry_b64, signature });
    t.equal(out.status, 0, out.stderr);
    t.equal(out.stdout.trim(), g.gw.keyring.signing.kid, 'signed by the current broker signing key');
    const changed = Buffer.from(m!.data);
    changed.writeUInt8(changed.readUInt8(changed.length - 3) ^ 1, changed.length - 3);
    t.equal(
      py('verify-entry', { jwks, entry_b64: changed.toString('base64url'), signature }).status,
      1,
      'other bytes do not verify in jwcrypto either',
    );
    t.equal(
      py('verify-entry', { jwks, entry_b64, signature: flipPart(signature, 2) }).status,
      1,
      'a changed signature does not verify',
    );
  },
);

t.test('the gateway accepts notices sealed by python3-jwcrypto', async (t) => {
  for (const [agency, crv, alg] of [
    ['vn-customs', 'X25519', 'ECDH-ES+A256KW'],
    ['vn-customs', 'P-256', 'ECDH-ES'],
    ['vn-c04', 'P-256', 'ECDH-ES+A256KW'],
    ['vn-c04', 'X25519', 'ECDH-ES'],
  ] as const) {
    const n = { ...notice(), origin: { country: 'VN', agency } };
    const brokerJwk = publicPart(g.jwks.keys.find((k) => k.use === 'enc' && k.crv === crv)!);
    const out = py('seal', {
      notice: JSON.stringify(n),
      signing_jwk: g.creds(agency).signing,
      broker_jwk: brokerJwk,
      alg,
    });
    t.equal(out.status, 0, out.stderr);
    const res = await g.post(out.stdout.trim());
    t.equal(res.status, 202, `${agency} ${crv} ${alg}: ${JSON.stringify(res.json)}`);
  }
});

// Deliveries open in jose and python3-jwcrypto: test/delivery-jwe.test.ts.
