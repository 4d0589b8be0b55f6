/**
 * Issue 21, "Probing": a refusal tells a caller no more than it may know.
 * - A non-member gets the same refusal for an operation that does not exist,
 *   is running, is inactive or has ended (status, code, title, detail), for
 *   notices and withdrawals alike; a member still learns that its operation
 *   is not active.
 * - `GET /v1/registry/agencies/:id/keys` answers only for agencies that share
 *   an operation with the caller (or the caller itself; any agency for an
 *   operator); an unknown agency and one in no common operation read the same.
 * - A notice id taken is 409 `duplicate-conflict` for everyone, the same
 *   answer whoever holds the id, and nothing about the notice that holds it.
 * - docs/problems.md says for every code what the refusal tells the caller.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { problemCodes } from '../broker/core/errors.js';
import { repoRoot } from '../broker/core/paths.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url);
const brokerId = g.config.brokerId;

/** A refusal as a caller compares it: status, media type and the problem body without the per-request `instance`. */
const refusal = (r: { status: number; headers: Record<string, unknown>; json: Record<string, any> }) => {
  const { instance: _instance, ...body } = r.json;
  return { status: r.status, type: r.headers['content-type'], body };
};

async function get(url: string, agency: string) {
  const token = await makeClientAssertion(agency, g.creds(agency).signing, brokerId);
  const res = await g.gw.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  return {
    status: res.statusCode,
    headers: res.headers as Record<string, unknown>,
    json: res.json<Record<string, any>>(),
  };
}

async function putOperation(op: { id: string; status: 'active' | 'inactive'; members: string[]; end?: string }) {
  await g.gw.registry.putOperation({ name: op.id, categories: [], ...op });
  await waitFor(
    () => (g.gw.registry.snapshot.operation(op.id)?.status === op.status ? true : undefined),
    `operation ${op.id} in the registry`,
  );
}

// gb-border-force is in aircop, oic-channel and closed-op (inactive); not in mekong-dragon-6, paused-op or ended-op.
await putOperation({ id: 'paused-op', status: 'inactive', members: ['vn-customs', 'th-customs'] });
await putOperation({ id: 'ended-op', status: 'active', members: ['vn-customs', 'th-customs'], end: '2020-12-31' });
await putOperation({ id: 'closed-op', status: 'inactive', members: ['gb-border-force', 'vn-customs'] });

const fromGb = (operation: string) =>
  sampleNotice('seizure-report', {
    operation,
    origin: { country: 'GB', agency: 'gb-border-force' },
    addressees: ['VN'],
    tlp: 'AMBER',
  });
function withdrawalFromGb(operation: string) {
  const of = randomUUID();
  const w = sampleNotice('withdrawal', {
    operation,
    origin: { country: 'GB', agency: 'gb-border-force' },
    addressees: ['VN'],
    tlp: 'AMBER',
    references: [of],
  });
  w['body'] = { ...w['body'], supersedes: of };
  return w;
}
const send = async (notice: Record<string, unknown>, agency: string) => g.post((await g.seal(notice, agency)).jwe);

t.test('a non-member gets one refusal whether the operation exists, runs, is inactive or has ended', async (t) => {
  for (const [kind, make] of [
    ['notice', fromGb],
    ['withdrawal', withdrawalFromGb],
  ] as const) {
    const missing = refusal(await send(make('no-such-operation'), 'gb-border-force'));
    t.equal(missing.status, 403, `${kind}: 403`);
    t.equal(missing.body['code'], 'policy-denied');
    t.same(
      refusal(await send(make('mekong-dragon-6'), 'gb-border-force')),
      missing,
      `${kind}: a running operation of others reads as a missing one`,
    );
    t.same(
      refusal(await send(make('paused-op'), 'gb-border-force')),
      missing,
      `${kind}: an inactive operation of others reads as a missing one`,
    );
    t.same(
      refusal(await send(make('ended-op'), 'gb-border-force')),
      missing,
      `${kind}: an ended operation of others reads as a missing one`,
    );
    t.notMatch(JSON.stringify(missing.body), /not active|unknown/, `${kind}: the words say neither`);
  }
  // A member knows its operation: it is told why.
  const own = await send(fromGb('closed-op'), 'gb-border-force');
  t.equal(own.status, 403);
  t.match(own.json['detail'], /not active/, 'a member learns that its operation is not active');
});

t.test('the inbox filter by operation reads the same for any operation id', async (t) => {
  const a = await get('/v1/inbox?operation=no-such-operation', 'gb-border-force');
  const b = await get('/v1/inbox?operation=mekong-dragon-6', 'gb-border-force');
  t.equal(a.status, 200);
  t.same(b.json, a.json, 'an empty page either way');
});

t.test(
  'agency keys: unknown and not shared read the same; members, the agency itself and operators get them',
  async (t) => {
    // iq-police is in oic-channel only (gb-border-force, fr-douane, vn-c04).
    const unknown = refusal(await get('/v1/registry/agencies/no-such-agency/keys', 'iq-police'));
    t.equal(unknown.status, 404);
    t.equal(unknown.body['code'], 'not-found');
    t.same(
      refusal(await get('/v1/registry/agencies/vn-customs/keys', 'iq-police')),
      unknown,
      'an agency in no common operation reads as an unknown one',
    );
    t.same(refusal(await get('/v1/registry/agencies/hub-operator/keys', 'iq-police')), unknown, 'the hub staff too');
    t.same(
      refusal(await get('/v1/registry/agencies/no-such-agency/keys', 'vn-customs')),
      refusal(await get('/v1/registry/agencies/iq-police/keys', 'vn-customs')),
      'and the other way round',
    );

    const shared = await get('/v1/registry/agencies/gb-border-force/keys', 'iq-police');
    t.equal(shared.status, 200, 'an agency of a common operation');
    t.equal(shared.json['agency'], 'gb-border-force');
    t.ok((shared.json['keys'] as { use: string }[]).some((k) => k.use === 'sig'));
    t.equal((await get('/v1/registry/agencies/iq-police/keys', 'iq-police')).status, 200, 'its own keys');
    // la-customs shares with iq-police only an operation that is no longer active.
    await putOperation({ id: 'old-op', status: 'inactive', members: ['iq-police', 'la-customs'] });
    t.equal(
      (await get('/v1/registry/agencies/la-customs/keys', 'iq-police')).status,
      200,
      'an operation that has ended still counts: its notices are still verified',
    );

    const byOperator = await get('/v1/registry/agencies/iq-police/keys', 'hub-operator');
    t.equal(byOperator.status, 200, 'an operator reads any agency');
    t.equal(byOperator.json['agency'], 'iq-police');
    t.equal((await get('/v1/registry/agencies/no-such-agency/keys', 'hub-operator')).status, 404);
    const auditor = await get('/v1/registry/agencies/iq-police/keys', 'hub-auditor');
    t.equal(auditor.status, 403, 'audit alone is not enough');
    t.equal(auditor.json['code'], 'forbidden');
  },
);

t.test('a notice id taken: the same 409 whoever holds it, saying nothing about the notice that holds it', async (t) => {
  const x = sampleNotice('seizure-report', {
    operation: 'aircop',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });
  const first = await send(x, 'vn-customs');
  t.equal(first.status, 202);
  const own = await send({ ...x, summary: 'other bytes' }, 'vn-customs');
  const other = await send(
    sampleNotice('seizure-report', {
      id: x['id'],
      operation: 'aircop',
      origin: { country: 'GB', agency: 'gb-border-force' },
      addressees: ['TH'],
      tlp: 'AMBER',
    }),
    'gb-border-force',
  );
  // th-customs received X: a recipient reusing the id it was sent.
  const recipient = await send(
    sampleNotice('seizure-report', {
      id: x['id'],
      operation: 'mekong-dragon-6',
      origin: { country: 'TH', agency: 'th-customs' },
      addressees: ['VN'],
      tlp: 'GREEN',
    }),
    'th-customs',
  );
  t.equal(own.status, 409);
  t.equal(own.json['code'], 'duplicate-conflict');
  t.same(refusal(other), refusal(own), 'another agency reads what the holder reads');
  t.same(refusal(recipient), refusal(own), 'a recipient of the original too, in another operation');
  t.same(Object.keys(own.json).sort(), ['code', 'instance', 'status', 'title', 'type'], 'no detail, no receipt');
  for (const r of [own, other, recipient]) {
    t.equal(r.headers['liaison-duplicate'], undefined, 'not marked as a retry');
    const text = JSON.stringify(r.json);
    for (const leak of [
      'vn-customs',
      'aircop',
      'th-customs',
      'log_index',
      first.json['received_at'],
      first.json['sha256'],
      first.json['receipt'],
    ]) {
      t.notOk(text.includes(leak), `nothing of the original: ${leak}`);
    }
  }
});

t.test('docs/problems.md says, for every code, what the refusal tells the caller', async (t) => {
  const doc = readFileSync(join(repoRoot, 'docs', 'problems.md'), 'utf8');
  for (const code of Object.keys(problemCodes)) {
    const section = doc.split(/^## /m).find((s) => s.startsWith(`\`${code}\``)) ?? '';
    t.match(section, /^- \*\*Tells the caller:\*\* \S/m, `${code}: what it tells the caller`);
  }
  const section = (code: string) => doc.split(/^## /m).find((s) => s.startsWith(`\`${code}\``)) ?? '';
  t.match(section('policy-denied'), /not a member/, 'policy-denied: the one refusal for operations that are not yours');
  t.match(section('not-found'), /shares no operation/, 'not-found: the key directory');
  t.match(section('duplicate-conflict'), /UUID/, 'duplicate-conflict: why a taken id may be told');
});
