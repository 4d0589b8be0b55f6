import t from 'tap';
import { SignJWT, importJWK } from 'jose';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url);
const app = g.gw.app;
// A probe route behind the same preHandler the inbox and log routes use.
app.get('/test/whoami', { preHandler: app.requireRole('subscribe') }, async (req) => ({
  agency: req.agency?.agencyId,
}));
app.get('/test/audit', { preHandler: app.requireRole('audit') }, async (req) => ({ agency: req.agency?.agencyId }));
const call = (token?: string, url = '/test/whoami') =>
  app.inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
const brokerId = g.config.brokerId;

t.test('a valid client assertion authenticates the agency, once', async (t) => {
  const token = await makeClientAssertion('th-customs', g.creds('th-customs').signing, brokerId);
  const ok = await call(token);
  t.equal(ok.statusCode, 200);
  t.same(ok.json(), { agency: 'th-customs' });
  const again = await call(token);
  t.equal(again.statusCode, 401, 'the same jti is refused the second time');
  t.equal(again.json().code, 'unauthorized');
  t.match(again.json().detail, /replay/);
});

t.test('refusals', async (t) => {
  const creds = g.creds('th-customs');
  const key = await importJWK(creds.signing, 'EdDSA');
  const now = Math.floor(Date.now() / 1000);
  const jwt = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT({ jti: `jti-${Math.random().toString(36).slice(2)}`, ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: creds.signing.kid, ...header })
      .sign(key);
  const base = { iss: 'th-customs', sub: 'th-customs', aud: brokerId, iat: now, exp: now + 60 };
  const cases: [string, string | undefined][] = [
    ['no token', undefined],
    ['garbage', 'abc'],
    ['wrong audience', await jwt({ ...base, aud: 'another-broker' })],
    ['audience list holding the broker and another party', await jwt({ ...base, aud: [brokerId, 'another-broker'] })],
    ['audience list holding only the broker', await jwt({ ...base, aud: [brokerId] })],
    ['issuer is another agency', await jwt({ ...base, iss: 'vn-customs', sub: 'vn-customs' })],
    ['expired', await jwt({ ...base, iat: now - 600, exp: now - 300 })],
    ['lifetime too long', await jwt({ ...base, exp: now + 3600 })],
    ['no jti', await new SignJWT({ ...base }).setProtectedHeader({ alg: 'EdDSA', kid: creds.signing.kid }).sign(key)],
    ['jku header', await jwt(base, { jku: 'https://attacker.example/keys' })],
    ['unknown kid', await jwt(base, { kid: 'nobody' })],
    [
      'signed by another key',
      await new SignJWT({ ...base, jti: 'abcdefgh-1' })
        .setProtectedHeader({ alg: 'EdDSA', kid: creds.signing.kid })
        .sign(await importJWK(g.creds('la-customs').signing, 'EdDSA')),
    ],
  ];
  for (const [what, token] of cases) {
    const res = await call(token);
    t.equal(res.statusCode, 401, what);
    t.equal(res.json().code, 'unauthorized', what);
  }
  const wrongRole = await call(await makeClientAssertion('th-customs', creds.signing, brokerId), '/test/audit');
  t.equal(wrongRole.statusCode, 403);
  t.equal(wrongRole.json().code, 'forbidden');
  const auditor = await call(
    await makeClientAssertion('hub-auditor', g.creds('hub-auditor').signing, brokerId),
    '/test/audit',
  );
  t.equal(auditor.statusCode, 200);
});
