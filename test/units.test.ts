import t from 'tap';
import { LiaisonError } from '../broker/core/errors.js';
import { subjectToken, isSlug, isCountry, isUuid } from '../broker/core/ids.js';
import { parseProtectedHeader } from '../broker/core/jose-header.js';
import { checkFreshness } from '../broker/ingest/freshness.js';
import { problemBody, toLiaisonError } from '../broker/http/problem.js';
import { ErrorCode, NatsError } from 'nats';
import { parseCompactJwe } from '../adapters/jose/parse-jwe.js';
import { settlesWithin } from '../broker/core/sleep.js';
import { turnBarrier } from '../broker/nats/connection.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof LiaisonError ? e.code : `not a LiaisonError: ${String(e)}`;
  }
  return 'no error';
};
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

t.test('subject tokens', async (t) => {
  t.equal(subjectToken('mekong-dragon-6', 'operation'), 'mekong-dragon-6');
  for (const bad of ['a.b', '*', '>', 'a b', '', 'a\tb', 'x'.repeat(65), 7, null, 'é'])
    t.equal(
      code(() => subjectToken(bad, 'operation')),
      'bad-request',
      String(bad),
    );
  t.ok(isSlug('vn-customs'));
  t.notOk(isSlug('VN'));
  t.ok(isCountry('VN'));
  t.notOk(isCountry('vn'));
  t.ok(isUuid('8f14e45f-ceea-467f-a0e6-7f2d3b1c9a00'));
  t.notOk(isUuid('8F14E45F-CEEA-467F-A0E6-7F2D3B1C9A00'));
});

t.test('protected headers', async (t) => {
  const rules = { what: 'JWS' as const, allowedAlgs: ['EdDSA'], allowedParams: ['alg', 'kid'] };
  t.same(parseProtectedHeader(b64({ alg: 'EdDSA', kid: 'k' }), rules), { alg: 'EdDSA', kid: 'k' });
  t.equal(
    code(() => parseProtectedHeader('!!', rules)),
    'envelope-malformed',
  );
  t.equal(
    code(() => parseProtectedHeader(b64('x'), rules)),
    'envelope-malformed',
  );
  t.equal(
    code(() =>
      parseProtectedHeader(Buffer.from('{"alg":"EdDSA","alg":"none","kid":"k"}').toString('base64url'), rules),
    ),
    'envelope-malformed',
    'duplicate header keys',
  );
  t.equal(
    code(() => parseProtectedHeader(b64({ kid: 'k' }), rules)),
    'envelope-malformed',
  );
  t.equal(
    code(() => parseProtectedHeader(b64({ alg: 'none', kid: 'k' }), rules)),
    'alg-not-allowed',
  );
  t.equal(
    code(() => parseProtectedHeader(b64({ alg: 'EdDSA' }), rules)),
    'key-unknown',
  );
  t.equal(
    code(() => parseProtectedHeader(b64({ alg: 'EdDSA', kid: 'k', x5t: 'a' }), rules)),
    'header-forbidden',
  );
  t.equal(
    code(() => parseCompactJwe('a.b.c.d')),
    'envelope-malformed',
  );
  t.equal(
    code(() => parseCompactJwe(`${b64({ alg: 'ECDH-ES', enc: 'A256GCM', kid: 'k' })}.notempty.c.d.e`)),
    'envelope-malformed',
    'direct ECDH-ES has no encrypted key',
  );
});

t.test('freshness', async (t) => {
  const now = new Date('2026-11-26T10:00:00Z');
  const rules = { clockSkewSeconds: 300, maxNoticeAgeSeconds: 3600 };
  t.doesNotThrow(() => checkFreshness({ created_at: '2026-11-26T09:30:00Z' }, now, rules));
  t.doesNotThrow(() => checkFreshness({ created_at: '2026-11-26T10:04:00+00:00' }, now, rules));
  t.equal(
    code(() => checkFreshness({ created_at: '2026-11-26T08:59:00Z' }, now, rules)),
    'replay',
  );
  t.equal(
    code(() => checkFreshness({ created_at: '2026-11-26T10:06:00Z' }, now, rules)),
    'clock-skew',
  );
  t.equal(
    code(() => checkFreshness({}, now, rules)),
    'schema-invalid',
  );
  t.equal(
    code(() => checkFreshness({ created_at: 'Thu, 26 Nov 2026 10:00:00 GMT' }, now, rules)),
    'schema-invalid',
  );
  t.equal(
    code(() => checkFreshness({ created_at: '2026-11-26T09:30:00Z', expires_at: '2026-11-26T09:45:00Z' }, now, rules)),
    'replay',
  );
});

t.test('problem mapping never leaks internals', async (t) => {
  const internal = toLiaisonError(new Error('ECONNRESET at /secret/path'));
  t.equal(internal.code, 'internal');
  const body = problemBody(internal, 'req-1');
  t.notMatch(JSON.stringify(body), /secret/);
  t.same(Object.keys(body).sort(), ['code', 'instance', 'status', 'title', 'type']);
  t.equal(toLiaisonError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'x' }).code, 'too-large');
  t.equal(toLiaisonError({ statusCode: 429 }).code, 'rate-limited');
  // A nats.js error let through (a request timing out while a cluster node dies: the fault test saw 500s) is a 503.
  const natsTimeout = toLiaisonError(NatsError.errorForCode(ErrorCode.Timeout));
  t.equal(natsTimeout.code, 'unavailable');
  t.equal(natsTimeout.status, 503);
  t.equal(toLiaisonError({ statusCode: 418, message: 'teapot' }).code, 'bad-request');
  const own = new LiaisonError('schema-invalid', { errors: [{ path: '/a', message: 'm' }] });
  t.equal(toLiaisonError(own), own);
  t.same(problemBody(own, 'r').errors, [{ path: '/a', message: 'm' }]);
});

t.test(
  'settlesWithin: true when the promise settles in time, false when it does not, its rejection passed on',
  async (t) => {
    t.equal(await settlesWithin(Promise.resolve(), 50), true);
    t.equal(await settlesWithin(new Promise((r) => setTimeout(r, 500)), 20), false);
    await t.rejects(settlesWithin(Promise.reject(new Error('boom')), 50), /boom/);
  },
);

t.test(
  'turnBarrier: everyone who waited in one turn goes at once, in call order; a wait made while releasing goes next turn',
  async (t) => {
    const wait = turnBarrier();
    const order: string[] = [];
    const turn1 = ['a', 'b', 'c'].map((k) => wait().then(() => void order.push(k)));
    // Queued after the barrier's release, so it runs after it: by then a, b and c (and their continuations) have gone.
    const after1 = new Promise<void>((r) => setImmediate(() => (order.push('immediate'), r())));
    let late: Promise<void> | undefined;
    void turn1[0]!.then(() => (late = wait().then(() => void order.push('late'))));
    await Promise.all([...turn1, after1]);
    t.same(order, ['a', 'b', 'c', 'immediate'], 'one turn, in call order');
    await late;
    t.same(order, ['a', 'b', 'c', 'immediate', 'late'], 'a wait made during a release waits for the next turn');
  },
);
