/**
 * Members and operations through the admin API: an operator creates an
 * operation, changes its members, onboards a new agency, each change one
 * broker-signed registry event in the log, in force on the live gateway, and
 * checked by the audit. A retried old change never undoes a newer one.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { openRegistryEvent } from '../broker/admin/registry-event.js';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { decodeEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import { createRegistryValidator } from '../broker/schemas/notice-validator.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { runCli } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { checkpointEveryEntries: 4, checkpointIntervalMs: 300 });
const brokerId = g.config.brokerId;
const OPERATOR = 'hub-operator';

async function call(method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown, as = OPERATOR, raw?: string) {
  const token = await makeClientAssertion(as, g.creds(as).signing, brokerId);
  const res = await g.gw.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}`, ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
    ...(method === 'GET' ? {} : { payload: raw ?? JSON.stringify(body) }),
  });
  return { status: res.statusCode, json: res.json<Record<string, any>>() };
}
const logCount = async () => (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.messages;
const entryAt = async (index: number) =>
  decodeEntry((await g.gw.bus.getMessage(STREAMS.log, index + 1))!.data) as unknown as Record<string, unknown>;
const lionfish = (members: string[]) => ({
  id: 'op-lionfish',
  name: 'Lionfish: cocaine in reefer containers',
  status: 'active',
  members,
  categories: ['drugs'],
});
/** Post a notice of `from` (its demo key, or `signingKey`) in op-lionfish to every member; its recipients, or the refusal. */
async function post(from: { agency: string; country: string }, signingKey?: Record<string, unknown>) {
  const n = sampleNotice('seizure-report', { operation: 'op-lionfish', origin: from, addressees: ['*'], tlp: 'AMBER' });
  const { jwe } = await g.seal(
    n,
    from.agency === 'my-customs' ? 'vn-customs' : from.agency,
    signingKey ? { signingKey } : {},
  );
  return g.post(jwe);
}
const seen = (what: string, check: () => boolean) => waitFor(() => (check() ? true : undefined), what, 2000);

const first = { id: randomUUID(), operation: lionfish(['vn-customs', 'th-customs']), reason: 'joint operation opened' };
let firstIndex = -1;

t.test(
  'an operation is created, then its members changed: each change a logged event, and notices follow the membership',
  async (t) => {
    const made = await call('PUT', '/v1/admin/operations/op-lionfish', first);
    t.equal(made.status, 201, JSON.stringify(made.json));
    t.equal(made.json.type, 'operation-set');
    firstIndex = made.json.log_index;
    t.match(await entryAt(firstIndex), {
      kind: 'registry',
      event: 'operation-set',
      event_id: first.id,
      subject: { operation: 'op-lionfish' },
      actor: OPERATOR,
    });
    const { event } = openRegistryEvent(made.json.event, g.gw.keyring.verificationKeys);
    t.same(event.record, first.operation, 'the signed event carries the record it set');
    await seen('op-lionfish in the registry', () => g.gw.registry.snapshot.operation('op-lionfish') !== undefined);
    const before = await post({ agency: 'vn-customs', country: 'VN' });
    t.equal(before.status, 202, JSON.stringify(before.json));
    t.same(before.json.recipients, ['th-customs']);

    const second = await call('PUT', '/v1/admin/operations/op-lionfish', {
      operation: lionfish(['vn-customs', 'la-customs']),
    });
    t.equal(second.status, 201);
    t.ok(second.json.log_index > firstIndex);
    await seen(
      'the new members',
      () => g.gw.registry.snapshot.operation('op-lionfish')?.members.includes('la-customs') === true,
    );
    const after = await post({ agency: 'vn-customs', country: 'VN' });
    t.same(
      after.json.recipients,
      ['la-customs'],
      'Thai customs left the operation and gets nothing more; Lao customs joined',
    );
    const fromTh = await post({ agency: 'th-customs', country: 'TH' });
    t.equal(fromTh.status, 403, 'a former member cannot post to it');
    t.equal(fromTh.json.code, 'policy-denied');

    const stored = await call('GET', '/v1/admin/operations/op-lionfish');
    t.equal(stored.status, 200);
    t.same(stored.json, {
      ...lionfish(['vn-customs', 'la-customs']),
      changed_by: { event_id: second.json.event_id, log_index: second.json.log_index },
    });

    // The first request retried (its answer was lost): the same event, not applied over the newer one.
    const retried = await call('PUT', '/v1/admin/operations/op-lionfish', first);
    t.equal(retried.status, 200);
    t.same([retried.json.duplicate, retried.json.log_index, retried.json.event_id], [true, firstIndex, first.id]);
    t.same(
      (await call('GET', '/v1/admin/operations/op-lionfish')).json.members,
      ['vn-customs', 'la-customs'],
      'the newer membership stands',
    );
    const reused = await call('PUT', '/v1/admin/agencies/th-customs', {
      id: first.id,
      agency: { id: 'th-customs', country: 'TH', name: 'x', roles: ['publish'] },
    });
    t.equal(reused.status, 409, 'an event id already used for another change');
    t.equal(reused.json.code, 'key-conflict');
  },
);

t.test('refused changes: named, and nothing logged or changed', async (t) => {
  const before = await logCount();
  const put = (body: unknown, raw?: string) => call('PUT', '/v1/admin/operations/op-lionfish', body, OPERATOR, raw);
  for (const [what, body, detail] of [
    ['a member that is no agency', { operation: lionfish(['vn-customs', 'xx-nobody']) }, /no agency xx-nobody/],
    [
      'another id than the path',
      { operation: { ...lionfish(['vn-customs']), id: 'op-other' } },
      /must be "op-lionfish"/,
    ],
    ['a status the schema does not know', { operation: { ...lionfish(['vn-customs']), status: 'paused' } }, /\/status/],
    ['a member twice', { operation: lionfish(['vn-customs', 'vn-customs']) }, /\/members/],
    ['a member id unsafe as a key', { operation: lionfish(['vn-customs', 'agency.>', '*']) }, /\/members/],
    [
      'changed_by from the client',
      { operation: { ...lionfish(['vn-customs']), changed_by: { event_id: first.id, log_index: 999 } } },
      /changed_by is set by the broker/,
    ],
    // Refused by the route's schema before the record is read: where and why.
    ['not an object', { operation: ['vn-customs'] }, /^body\/operation must be object$/],
    [
      'an unknown member of the body',
      { operation: lionfish(['vn-customs']), force: true },
      /^body must NOT have additional properties$/,
    ],
  ] as const) {
    const r = await put(body);
    t.equal(r.status, 400, what);
    t.equal(r.json.code, 'bad-request', what);
    t.match(String(r.json.detail ?? ''), detail, what);
  }
  t.equal(
    (await put(undefined, '{"operation":{"id":"op-lionfish"},"operation":{}}')).status,
    400,
    'duplicate members in the JSON',
  );
  t.equal(
    (await call('PUT', '/v1/admin/operations/Op.Lionfish', { operation: lionfish(['vn-customs']) })).status,
    400,
    'an id unsafe in a subject',
  );
  const agency = await call(
    'PUT',
    '/v1/admin/operations/op-lionfish',
    { operation: lionfish(['vn-customs']) },
    'vn-customs',
  );
  t.equal(agency.status, 403, 'a member agency is no operator');
  t.equal(
    (await call('GET', '/v1/admin/operations/op-lionfish', undefined, 'vn-customs')).status,
    403,
    'nor reads the records',
  );
  t.equal((await call('GET', '/v1/admin/operations/op-nothing')).json.code, 'not-found');
  t.equal((await call('GET', '/v1/admin/agencies/no-agency')).json.code, 'not-found');
  t.equal(await logCount(), before, 'no refused change reached the log');
  t.same(
    g.gw.registry.snapshot.operation('op-lionfish')?.members,
    ['vn-customs', 'la-customs'],
    'and the operation is as it was',
  );
});

t.test(
  'a new agency joins with its own keys, posts in its operation, and keeps a key rotated before its record is set again',
  async (t) => {
    const sig = await makeKeyPair('Ed25519');
    const enc = await makeKeyPair('X25519');
    const record = {
      id: 'my-customs',
      country: 'MY',
      name: 'Royal Malaysian Customs',
      roles: ['publish', 'subscribe'],
    };
    const keys = [
      { kid: sig.kid, use: 'sig', jwk: sig.publicJwk },
      { kid: enc.kid, use: 'enc', jwk: enc.publicJwk },
    ];
    const taken = await call('PUT', '/v1/admin/agencies/my-customs', {
      agency: record,
      keys: [{ kid: g.creds('vn-customs').signing.kid, use: 'sig', jwk: sig.publicJwk }],
    });
    t.equal(taken.json.code, 'key-conflict', 'a kid another agency holds');
    t.equal(
      (await call('PUT', '/v1/admin/agencies/my-customs', { agency: { ...record, keys } })).status,
      400,
      'keys belong in `keys`, not in the record',
    );
    t.equal(
      (
        await call('PUT', '/v1/admin/agencies/my-customs', {
          agency: record,
          keys: [{ kid: sig.kid, use: 'sig', jwk: sig.privateJwk }],
        })
      ).status,
      400,
      'a private key',
    );

    const joined = await call('PUT', '/v1/admin/agencies/my-customs', {
      agency: record,
      keys,
      reason: 'joins AIRCOP and Lionfish',
    });
    t.equal(joined.status, 201, JSON.stringify(joined.json));
    t.match(await entryAt(joined.json.log_index), {
      event: 'agency-set',
      subject: { agency: 'my-customs' },
      kids: [sig.kid, enc.kid],
    });
    const members = await call('PUT', '/v1/admin/operations/op-lionfish', {
      operation: lionfish(['vn-customs', 'la-customs', 'my-customs']),
    });
    t.equal(members.status, 201);
    await seen(
      'my-customs in op-lionfish',
      () =>
        g.gw.registry.snapshot.operation('op-lionfish')?.members.includes('my-customs') === true &&
        g.gw.registry.snapshot.agency('my-customs') !== undefined,
    );
    const sent = await post({ agency: 'my-customs', country: 'MY' }, sig.privateJwk);
    t.equal(sent.status, 202, JSON.stringify(sent.json));
    t.same(sent.json.recipients, ['la-customs', 'vn-customs']);

    const next = await makeKeyPair('Ed25519');
    t.equal(
      (
        await call('POST', `/v1/admin/agencies/my-customs/keys/${sig.kid}/rotate`, {
          key: { kid: next.kid, use: 'sig', jwk: next.publicJwk },
        })
      ).status,
      201,
    );
    const renamed = await call('PUT', '/v1/admin/agencies/my-customs', {
      agency: { ...record, name: 'Jabatan Kastam Diraja Malaysia' },
      keys,
    });
    t.equal(renamed.status, 201, 'an existing agency set again, listing keys it has');
    const stored = (await call('GET', '/v1/admin/agencies/my-customs')).json;
    t.equal(stored.name, 'Jabatan Kastam Diraja Malaysia');
    t.same(
      stored.keys.map((k: { kid: string }) => k.kid),
      [sig.kid, enc.kid, next.kid],
      'the key rotated meanwhile is kept',
    );
    t.ok(
      stored.keys.find((k: { kid: string }) => k.kid === sig.kid).not_after,
      'and the old one still ends after its overlap',
    );
    t.same(stored.changed_by, { event_id: renamed.json.event_id, log_index: renamed.json.log_index });

    // Another gateway whose registry watch is behind (stopped here): it asks the store for a member it has not seen.
    const late = await startTestGateway(t, nats.url, {
      keyEncryptionKeyFile: join(g.dataDir, 'broker', 'kek'),
      router: false,
      checkpointer: false,
      webhook: false,
    });
    late.gw.registry.close();
    const sgSig = await makeKeyPair('Ed25519');
    t.equal(
      (
        await call('PUT', '/v1/admin/agencies/sg-police', {
          agency: { id: 'sg-police', country: 'SG', name: 'Singapore Police Force', roles: ['publish'] },
          keys: [{ kid: sgSig.kid, use: 'sig', jwk: sgSig.publicJwk }],
        })
      ).status,
      201,
    );
    t.equal(late.gw.registry.snapshot.agency('sg-police'), undefined, 'the other gateway has not seen the new agency');
    const token = await makeClientAssertion(OPERATOR, g.creds(OPERATOR).signing, brokerId);
    const viaLate = await late.gw.app.inject({
      method: 'PUT',
      url: '/v1/admin/operations/op-lionfish',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ operation: lionfish(['vn-customs', 'la-customs', 'my-customs', 'sg-police']) }),
    });
    t.equal(viaLate.statusCode, 201, viaLate.body);

    const unknownKey = await makeKeyPair('Ed25519');
    const sneaked = await call('PUT', '/v1/admin/agencies/my-customs', {
      agency: record,
      keys: [{ kid: unknownKey.kid, use: 'sig', jwk: unknownKey.publicJwk }],
    });
    t.equal(sneaked.status, 400, 'a new key for an existing agency goes through the key routes');
    t.match(sneaked.json.detail, /through its key routes/);
    t.equal(
      (await call('PUT', '/v1/admin/agencies/my-customs', { agency: { ...record, country: 'SG' } })).status,
      400,
      'an agency does not change country',
    );
  },
);

t.test('liaison admin get and set, and the audit checks every registry event', async (t) => {
  const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'liaison-registry-admin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => runCli(args);
  const op = ['--as', OPERATOR, '--data-dir', g.dataDir, '--url', url];
  const got = await cli('admin', 'get-operation', '--operation', 'op-lionfish', ...op);
  t.equal(got.code, 0, got.stderr);
  const file = join(dir, 'op.json');
  // As an operator edits it: the fetched record, one member more.
  const edited = JSON.parse(got.stdout) as { members: string[] };
  writeFileSync(file, JSON.stringify({ ...edited, members: [...edited.members, 'th-customs'] }, null, 2));
  const set = await cli('admin', 'set-operation', '--file', file, '--reason', 'Thai customs rejoins', ...op);
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /^operation-set: event [0-9a-f-]{36} at log index \d+\n$/);
  await seen(
    'th-customs back in op-lionfish',
    () => g.gw.registry.snapshot.operation('op-lionfish')?.members.includes('th-customs') === true,
  );

  const credsFile = join(dir, 'sg-customs.json');
  const made = await cli('keys', 'generate', '--agency', 'sg-customs', '--country', 'SG', '--out', credsFile);
  t.equal(made.code, 0, made.stderr);
  const recordFile = join(dir, 'sg-customs.record.json');
  writeFileSync(recordFile, made.stdout);
  const joined = await cli('admin', 'set-agency', '--file', recordFile, ...op);
  t.equal(joined.code, 0, joined.stderr);
  const sg = JSON.parse((await cli('admin', 'get-agency', '--agency', 'sg-customs', ...op)).stdout) as {
    keys: { kid: string; status: string }[];
  };
  const generated = JSON.parse(readFileSync(credsFile, 'utf8')) as {
    signing: { kid: string };
    encryption: { kid: string };
  };
  t.same(
    sg.keys.map((k) => [k.kid, k.status]),
    [
      [generated.signing.kid, 'active'],
      [generated.encryption.kid, 'active'],
    ],
    'the generated keys registered',
  );
  const again = await cli('admin', 'set-agency', '--file', recordFile, ...op);
  t.equal(again.code, 0, 'the same record file again: the keys it lists are its own');
  const refused = await cli(
    'admin',
    'set-operation',
    '--file',
    file,
    '--as',
    'vn-customs',
    '--data-dir',
    g.dataDir,
    '--url',
    url,
  );
  t.equal(refused.code, 1);
  t.match(refused.stderr, /^refused: 403 forbidden/);

  // The live registry as a seed file: valid by the registry schema, and what liaison nats creds makes NATS users from.
  const reg = await cli('admin', 'get-registry', ...op);
  t.equal(reg.code, 0, reg.stderr);
  const seed = JSON.parse(reg.stdout) as {
    agencies: { id: string }[];
    operations: { id: string; members: string[] }[];
  };
  t.same(createRegistryValidator()(seed), { ok: true }, 'a valid registry seed');
  t.ok(
    ['my-customs', 'sg-customs', 'sg-police'].every((id) => seed.agencies.some((a) => a.id === id)),
    'with the agencies that joined',
  );
  t.ok(seed.operations.find((o) => o.id === 'op-lionfish')?.members.includes('th-customs'));
  const seedFile = join(dir, 'registry.json');
  writeFileSync(seedFile, reg.stdout);
  const natsCreds = await cli('nats', 'creds', '--registry', seedFile, '--out', join(dir, 'nats'));
  t.equal(natsCreds.code, 0, natsCreds.stderr);
  t.ok(
    existsSync(join(dir, 'nats', 'agencies', 'sg-customs.json')),
    'NATS credentials for an agency that joined on the running network',
  );

  const total = await logCount();
  await waitFor(
    () => (g.gw.checkpointer!.status.checkpointSize === total ? true : undefined),
    `a checkpoint over all ${total} entries`,
    15_000,
  );
  const archive = await exportArchive(
    g.gw.bus,
    brokerId,
    g.gw.keyring.verificationKeys.map((k) => ({
      kty: String(k.kty),
      crv: String(k.crv),
      x: String(k.x),
      kid: String(k.kid),
    })),
    g.gw.keyring,
  );
  const report = await auditLogWithOrigins(archiveToAuditInput(archive));
  t.same(report.problems, []);
  t.ok(report.ok);
  const registryEntries = archive.entries.filter(
    (e) => decodeEntry(Buffer.from(e.entry, 'base64url')).kind === 'registry',
  ).length;
  t.ok(registryEntries >= 8, `${registryEntries} registry entries`);
  t.equal(
    report.registryEventsChecked,
    registryEntries,
    'every registry event checked against its entry and the broker key history',
  );
  t.ok(report.signaturesChecked! >= 3, "the new agency's notice verified against the key history too");
});
