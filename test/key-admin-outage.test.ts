/** The admin API when NATS is down: 503 with Retry-After and nothing changed; after recovery the retry with the same id makes the change once. */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { decodeEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { publishTimeoutMs: 1000, retryAfterSeconds: 3 });
/** The running nats-server: restart() starts a new one on the same port and store. */
let server = nats;

t.test('NATS down: 503, nothing half-made; the retry after recovery revokes the key once', async (t) => {
  const kid = g.creds('la-customs').signing.kid as string;
  const id = randomUUID();
  const revoke = async () => {
    const token = await makeClientAssertion('hub-operator', g.creds('hub-operator').signing, g.config.brokerId);
    return g.gw.app.inject({
      method: 'POST',
      url: `/v1/admin/agencies/la-customs/keys/${kid}/revoke`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ id, reason: 'test' }),
    });
  };
  await server.stop();
  const down = await revoke();
  t.equal(down.statusCode, 503);
  t.equal(down.json().code, 'unavailable');
  t.ok(Number(down.headers['retry-after']) > 0, 'with Retry-After');
  t.equal(g.gw.registry.snapshot.key(kid)?.key.status, 'active', 'the key is not revoked');

  server = await server.restart();
  let res = down;
  const deadline = Date.now() + 20_000;
  while (res.statusCode === 503 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    res = await revoke();
  }
  t.equal(res.statusCode, 201, 'the same request, once NATS is back');
  t.equal(res.json().event_id, id);
  const again = await revoke();
  t.equal(again.statusCode, 200, 'and again: already recorded');
  const info = await g.gw.bus.jsm.streams.info(STREAMS.log);
  const events: string[] = [];
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const e = decodeEntry((await g.gw.bus.getMessage(STREAMS.log, seq))!.data);
    if (e.kind === 'registry') events.push(e.event_id);
  }
  t.same(events, [id], 'one registry entry, for this change');
  t.equal(
    (await g.gw.registry.readAgency('la-customs'))!.keys.find((k) => k.kid === kid)?.status,
    'revoked',
    'the record says revoked',
  );
  // The registry watch is started afresh when the connection comes back (registry/store.ts), not left to its heartbeat.
  // Bounded at 5 s: the client's own watch resumed only with its heartbeat, about 12 s after the restart.
  await waitFor(
    () => (g.gw.registry.snapshot.key(kid)?.key.status === 'revoked' ? true : undefined),
    'the gateway’s registry watch, back after the outage, to take up the revocation',
    5_000,
  );
  t.pass('the gateway refuses the key again without a restart');
});

t.test(
  'NATS down: an operation set is 503 and nothing changed, its record unreadable (503); the retry after recovery sets it once',
  async (t) => {
    const id = randomUUID();
    const call = async (method: 'PUT' | 'GET') => {
      const token = await makeClientAssertion('hub-operator', g.creds('hub-operator').signing, g.config.brokerId);
      const operation = {
        id: 'op-outage',
        name: 'Set while NATS was down',
        status: 'active',
        members: ['vn-customs', 'th-customs'],
        categories: [],
      };
      return g.gw.app.inject({
        method,
        url: '/v1/admin/operations/op-outage',
        headers: {
          authorization: `Bearer ${token}`,
          ...(method === 'PUT' ? { 'content-type': 'application/json' } : {}),
        },
        ...(method === 'PUT' ? { payload: JSON.stringify({ id, operation }) } : {}),
      });
    };
    const logged = async () => (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.messages;
    const before = await logged();
    await server.stop();
    for (const method of ['PUT', 'GET'] as const) {
      const down = await call(method);
      t.equal(down.statusCode, 503, method);
      t.equal(down.json().code, 'unavailable', method);
      t.ok(Number(down.headers['retry-after']) > 0, `${method} with Retry-After`);
    }
    server = await server.restart();
    let res = await call('PUT');
    const deadline = Date.now() + 20_000;
    while (res.statusCode === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      res = await call('PUT');
    }
    t.equal(res.statusCode, 201, 'the same request, once NATS is back');
    t.equal((await call('PUT')).statusCode, 200, 'and again: already recorded');
    t.equal(await logged(), before + 1, 'one log entry, for this change');
    t.same((await call('GET')).json().members, ['vn-customs', 'th-customs']);
  },
);
