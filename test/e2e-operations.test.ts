/**
 * End-to-end operations (docs/end-to-end.md) on a real nats-server through the
 * real gateway: the member directory, the jose-e2e envelope's checks, its
 * routing to exactly its recipients unread, and what the hub cannot open.
 */
import t, { type Test } from 'tap';
import type { AddressInfo } from 'node:net';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { leaseTtlSeconds: 3, routerAckWaitSeconds: 2 });
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;

const E2E_OP = 'mekong-sealed';

async function authed(agency: string, path: string): Promise<{ status: number; json: any }> {
  const token = await makeClientAssertion(agency, g.creds(agency).signing, g.config.brokerId);
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, json: await res.json() };
}

async function problem(t: Test, got: { status: number; json: any }, status: number, code: string, what: string) {
  t.equal(got.status, status, `${what}: status ${status}`);
  t.equal(got.json.code, code, `${what}: code ${code}`);
}

t.test('the member directory: members only, current encryption keys', async (t) => {
  const r = await authed('vn-customs', `/v1/operations/${E2E_OP}/members`);
  t.equal(r.status, 200);
  t.equal(r.json.end_to_end, true);
  t.same(
    r.json.members.map((m: any) => m.agency),
    ['vn-customs', 'th-customs', 'la-customs'],
  );
  for (const m of r.json.members) {
    t.ok(m.encryption_keys.length >= 1, `${m.agency} has a current encryption key`);
    for (const k of m.encryption_keys) {
      t.notOk('d' in k, 'public members only');
      t.equal(k.kid, g.creds(m.agency).encryption.kid, 'the agency key the demo network registered');
    }
  }
  t.equal((await authed('vn-customs', '/v1/operations/aircop/members')).json.end_to_end, false);
  // A non-member and an unknown operation read the same.
  const notMember = await authed('gb-border-force', `/v1/operations/${E2E_OP}/members`);
  const unknown = await authed('gb-border-force', '/v1/operations/no-such-op/members');
  await problem(t, notMember, 404, 'operation-not-found', 'non-member');
  await problem(t, unknown, 404, 'operation-not-found', 'unknown operation');
  t.equal(notMember.json.detail, unknown.json.detail, 'the same answer');
  const anonymous = await fetch(`${url}/v1/operations/${E2E_OP}/members`);
  t.equal(anonymous.status, 401);
});
