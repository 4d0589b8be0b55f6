/**
 * Every 503 the gateway sends carries the configured Retry-After
 * (retryAfterSeconds), whichever path answered it. Each subtest drives one
 * path that used to pick its own (a hard-coded 5 or 2): with NATS stopped, or
 * with one NATS call made to fail with a real nats.js timeout.
 */
import t, { type Test } from 'tap';
import { connect, type NatsError } from 'nats';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

t.setTimeout(120_000);
const RETRY_AFTER = '7'; // neither 5 nor 2, the values some paths wrote out
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  publishTimeoutMs: 1000,
  retryAfterSeconds: Number(RETRY_AFTER),
  router: false,
  checkpointer: false,
  webhook: false,
});

/** A real nats.js timeout: a request nobody answers. */
async function natsTimeout(): Promise<NatsError> {
  const nc = await connect({ servers: nats.url });
  const sub = nc.subscribe('nobody.answers');
  const err = await nc.request('nobody.answers', new Uint8Array(0), { timeout: 50, noMux: true }).then(
    () => undefined,
    (e: unknown) => e as NatsError,
  );
  sub.unsubscribe();
  await nc.close();
  if (!err) throw new Error('the request was answered');
  return err;
}
const timeout = await natsTimeout();
t.equal(timeout.code, 'TIMEOUT', 'the injected error is a nats.js timeout');

/** Run `fn` while every stored-message get of the gateway's connection fails as `timeout`. */
async function whileGetsFail<T>(fn: () => Promise<T>): Promise<T> {
  const streams = g.gw.bus.jsm.streams;
  // Put back as it was (a method of this object) in the finally below.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const real = streams.getMessage;
  streams.getMessage = () => Promise.reject(timeout);
  try {
    return await fn();
  } finally {
    streams.getMessage = real;
  }
}

const bearer = async (agency: string) =>
  `Bearer ${await makeClientAssertion(agency, g.creds(agency).signing, g.config.brokerId)}`;
const get = async (agency: string, url: string) =>
  g.gw.app.inject({ method: 'GET', url, headers: { authorization: await bearer(agency) } });
const original = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'GREEN',
  });
function withdrawal(of: string): Record<string, any> {
  const w = sampleNotice('withdrawal', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'GREEN',
    references: [of],
  });
  w['body'] = { ...w['body'], supersedes: of };
  return w;
}
const post = async (notice: Record<string, any>) => g.post((await g.seal(notice, 'vn-customs')).jwe);

/** An inject() response, or what g.post() returns. */
type Answer =
  | { statusCode: number; headers: Record<string, unknown>; json(): unknown }
  | { status: number; headers: Record<string, unknown>; json: Record<string, unknown> };

/** A 503 `unavailable` with the configured Retry-After; `failed`: what the gateway's log says failed (the path taken). */
function isConfigured503(t: Test, res: Answer, what: string, failed?: RegExp) {
  const [status, body] =
    'statusCode' in res ? [res.statusCode, res.json() as Record<string, unknown>] : [res.status, res.json];
  t.equal(status, 503, `${what}: 503`);
  t.equal(body['code'], 'unavailable', `${what}: unavailable`);
  t.equal(res.headers['retry-after'], RETRY_AFTER, `${what}: Retry-After from config`);
  if (!failed) return;
  const line = g.logLines
    .map((l) => JSON.parse(l) as { reqId?: string; msg?: string; err?: { message?: string } })
    .find((l) => l.reqId === res.headers['x-request-id'] && l.msg === 'request failed');
  t.match(line?.err?.message, failed, `${what}: failed in ${failed.source}`);
}

t.test('a withdrawal whose original is not routed yet (was Retry-After 2)', async (t) => {
  const n = original();
  t.equal((await post(n)).status, 202);
  isConfigured503(t, await post(withdrawal(n['id'])), 'the withdrawal, no router running', /is not routed yet/);
});

t.test('the log look-up of a withdrawal fails (was 5)', async (t) => {
  const n = original();
  t.equal((await post(n)).status, 202);
  const w = withdrawal(n['id']);
  isConfigured503(t, await whileGetsFail(() => post(w)), 'the withdrawal', /^last checkpoint: TIMEOUT/);
});

t.test('the inbox look-up fails (was 5)', async (t) => {
  isConfigured503(
    t,
    await whileGetsFail(() => get('th-customs', '/v1/inbox')),
    'GET /v1/inbox',
    /^inbox lookup: TIMEOUT/,
  );
});

t.test('the read-receipt list fails (was 5)', async (t) => {
  const n = original();
  t.equal((await post(n)).status, 202);
  isConfigured503(
    t,
    await whileGetsFail(() => get('vn-customs', `/v1/notices/${n['id']}/acks`)),
    'GET acks',
    /^acks list: TIMEOUT/,
  );
});

t.test('a registry change cannot look up its event (was 5)', async (t) => {
  const operation = {
    id: 'op-retry-after',
    name: 'Retry-After',
    status: 'active',
    members: ['vn-customs', 'th-customs'],
    categories: [],
  };
  const res = await whileGetsFail(async () =>
    g.gw.app.inject({
      method: 'PUT',
      url: '/v1/admin/operations/op-retry-after',
      headers: { authorization: await bearer('hub-operator'), 'content-type': 'application/json' },
      payload: JSON.stringify({ operation }),
    }),
  );
  isConfigured503(t, res, 'PUT an operation', /^registry event lookup: TIMEOUT/);
});

t.test('a registry read fails (was 5)', async (t) => {
  const kv = g.gw.registry.kv;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- put back as it was below
  const real = kv.get;
  kv.get = () => Promise.reject(timeout);
  try {
    isConfigured503(
      t,
      await get('hub-operator', '/v1/admin/operations/mekong-dragon-6'),
      'GET an operation',
      /^registry read: TIMEOUT/,
    );
  } finally {
    kv.get = real;
  }
});

t.test(
  'NATS stopped: an authenticated request cannot claim its jti (was 2), /readyz on both listeners (was 5)',
  async (t) => {
    await nats.stop();
    isConfigured503(t, await get('th-customs', '/v1/inbox'), 'GET /v1/inbox', /^jti store: /);
    isConfigured503(t, await g.gw.app.inject({ method: 'GET', url: '/readyz' }), 'API /readyz');
    isConfigured503(t, await g.gw.ops.inject({ method: 'GET', url: '/readyz' }), 'operations /readyz');
    isConfigured503(t, await post(original()), 'POST /v1/notices', /^publish: not connected/);
  },
);
