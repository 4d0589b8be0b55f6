/**
 * Key lifecycle through the admin API, on two gateway instances sharing one
 * NATS (each with its own data dir, the same key-encryption key): broker
 * encryption and signing keys rotated, agency keys added, rotated and revoked;
 * each change a signed registry event in the log, taken up by the other
 * instance within a second; and a run in which all of it happens while notices
 * flow, after which nothing that should pass was refused and the whole log
 * still verifies.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { JWK } from 'jose';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { brokerEncryptionKey } from '../broker/agency-client/seal.js';
import { openRegistryEvent } from '../broker/admin/registry-event.js';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { verifyReceipt } from '../broker/ingest/notice-receipt.js';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { KekMismatchError } from '../broker/keys/keyring-store.js';
import { makeOpenPgpAgencyKey } from '../broker/keys/openpgp-agency.js';
import { decodeEntry, type RegistryLogEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/nats/streams.js';
import { sampleNotice, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { rejectsWith } from './helpers/assert-error.js';
import { runCli } from './helpers/cli.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(240_000);
const nats = await startTestNats(t);
const a = await startTestGateway(t, nats.url, { checkpointEveryEntries: 8, checkpointIntervalMs: 300 });
const kekFile = join(a.dataDir, 'broker', 'kek');
const b = await startTestGateway(t, nats.url, {
  keyEncryptionKeyFile: kekFile,
  router: false,
  checkpointer: false,
  webhook: false,
});
const brokerId = a.config.brokerId;
const OPERATOR = 'hub-operator';

async function admin(g: TestGateway, path: string, body: unknown, as = OPERATOR, raw?: string) {
  const token = await makeClientAssertion(as, a.creds(as).signing, brokerId);
  const res = await g.gw.app.inject({
    method: 'POST',
    url: path,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: raw ?? JSON.stringify(body),
  });
  return { status: res.statusCode, json: res.json<Record<string, any>>() };
}
const keysOf = async (g: TestGateway) =>
  (await g.gw.app.inject({ method: 'GET', url: '/v1/keys' })).json<{ keys: JWK[]; broker: string }>();
const encKids = (jwks: { keys: JWK[] }) =>
  jwks.keys
    .filter((k) => k.use === 'enc')
    .map((k) => k.kid)
    .sort();
const logCount = async () => (await a.gw.bus.jsm.streams.info(STREAMS.log)).state.messages;
const notice = (agency: string, country: string) =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country, agency },
    addressees: [country === 'TH' ? 'VN' : 'TH'],
    tlp: 'AMBER',
  });
/** Post a notice of `agency` through gateway g, sealed to `brokerKey` and signed with `signingKey` (defaults: the agency's demo key, the broker's first X25519 key at start). */
async function send(g: TestGateway, agency: string, country: string, o: { brokerKey?: JWK; signingKey?: JWK } = {}) {
  const { jwe } = await a.seal(notice(agency, country), agency, {
    ...(o.brokerKey ? { brokerKey: o.brokerKey } : {}),
    ...(o.signingKey ? { signingKey: o.signingKey } : {}),
  });
  return g.post(jwe);
}
const eventType = (jws: string) =>
  (JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()) as { type: string }).type;
/** Time until `check` holds on the other instance; fails past a second. */
async function withinASecond(what: string, check: () => Promise<boolean> | boolean): Promise<number> {
  const started = Date.now();
  await waitFor(async () => ((await check()) ? true : undefined), what, 1000);
  return Date.now() - started;
}

t.test('every instance runs with the one keyring from NATS', async (t) => {
  t.equal(
    b.gw.keyring.signing.kid,
    a.gw.keyring.signing.kid,
    'the second instance took up the first one’s signing key, not its own',
  );
  t.same(await keysOf(b), await keysOf(a));
  await rejectsWith(
    t,
    startTestGateway(t, nats.url, { router: false, checkpointer: false, webhook: false }),
    KekMismatchError,
    'kek-mismatch',
    {
      message: /sealed under key-encryption key .* give every gateway of the network the same KEK/,
      what: 'an instance with another KEK does not start',
    },
  );
});

t.test('the admin API: operators only, hostile bodies refused, nothing logged', async (t) => {
  const before = await logCount();
  const path = '/v1/admin/broker/keys/signing/rotate';
  const none = await a.gw.app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': 'application/json' },
    payload: '{}',
  });
  t.equal(none.statusCode, 401);
  t.equal(none.json().code, 'unauthorized');
  const agency = await admin(a, path, {}, 'th-customs');
  t.equal(agency.status, 403, 'an agency without the operator role');
  t.equal(agency.json.code, 'forbidden');
  for (const [what, raw] of [
    ['unknown member', '{"force":true}'],
    ['duplicate keys', '{"reason":"a","reason":"b"}'],
    ['__proto__', '{"__proto__":{"x":1}}'],
    ['not JSON', '{"reason":'],
    ['id not a UUID', '{"id":"../x"}'],
  ] as const) {
    const r = await admin(a, path, undefined, OPERATOR, raw);
    t.equal(r.status, 400, what);
    t.equal(r.json.code, 'bad-request', what);
  }
  const k = await makeKeyPair('Ed25519');
  t.equal(
    (await admin(a, '/v1/admin/agencies/no-such-agency/keys', { key: { kid: k.kid, use: 'sig', jwk: k.publicJwk } }))
      .json.code,
    'not-found',
  );
  t.equal((await admin(a, '/v1/admin/agencies/th-customs/keys/no-such-kid/revoke', {})).json.code, 'not-found');
  const priv = await admin(a, '/v1/admin/agencies/th-customs/keys', {
    key: { kid: k.kid, use: 'sig', jwk: k.privateJwk },
  });
  t.equal(priv.status, 400, 'a private key is refused');
  const taken = a.creds('vn-customs').signing.kid as string;
  t.equal(
    (await admin(a, '/v1/admin/agencies/th-customs/keys', { key: { kid: taken, use: 'sig', jwk: k.publicJwk } })).json
      .code,
    'key-conflict',
    'a kid another agency holds',
  );
  t.equal(
    (
      await admin(a, '/v1/admin/agencies/th-customs/keys', {
        key: { kid: k.kid, use: 'sig', jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } },
      })
    ).status,
    400,
    'a key that is not a key',
  );
  const enc = await makeKeyPair('X25519');
  t.equal(
    (
      await admin(a, `/v1/admin/agencies/th-customs/keys/${a.creds('th-customs').signing.kid}/rotate`, {
        key: { kid: enc.kid, use: 'enc', jwk: enc.publicJwk },
      })
    ).status,
    400,
    'a successor of another use',
  );
  t.equal(
    (
      await admin(a, '/v1/admin/agencies/th-customs/keys', {
        key: {
          kid: k.kid,
          use: 'sig',
          jwk: k.publicJwk,
          not_before: '2030-01-02T00:00:00Z',
          not_after: '2030-01-01T00:00:00Z',
        },
      })
    ).status,
    400,
    'a validity window that ends before it starts',
  );
  const pgp = await makeOpenPgpAgencyKey('Operator test', 'op@demo.liaison.invalid');
  const pgpKey = (armored: string, kid = pgp.record.kid) => ({ key: { kid, use: 'sig', format: 'openpgp', armored } });
  t.equal(
    (
      await admin(
        a,
        '/v1/admin/agencies/th-customs/keys',
        pgpKey('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n'),
      )
    ).status,
    400,
    'an armored block that is no key',
  );
  t.equal(
    (await admin(a, '/v1/admin/agencies/th-customs/keys', pgpKey(pgp.privateArmored))).status,
    400,
    'an OpenPGP secret key',
  );
  t.equal(
    (await admin(a, '/v1/admin/agencies/th-customs/keys', pgpKey(pgp.record.armored, 'AAAA'))).status,
    400,
    'a kid that is not the fingerprint',
  );
  t.equal(await logCount(), before, 'no refused change reached the log');
  t.notOk(
    a.logLines.some((l) => l.includes(pgp.privateArmored.split('\n')[3]!)),
    'nor the OpenPGP secret key in a log line',
  );
  const added = await admin(a, '/v1/admin/agencies/th-customs/keys', pgpKey(pgp.record.armored));
  t.equal(added.status, 201, 'an OpenPGP certificate is added');
  await waitFor(
    () =>
      b.gw.registry.snapshot.agency('th-customs')!.openpgp_keys?.some((x) => x.kid === pgp.record.kid)
        ? true
        : undefined,
    'the certificate on the other instance',
    1000,
  );
  t.notOk(
    a.logLines.some((l) => l.includes(k.privateJwk.d as string)),
    'the private key sent by mistake is in no log line',
  );
});

t.test(
  'broker encryption keys: rotated on one instance, published by all within a second, old keys decrypt through the grace period',
  async (t) => {
    const start = await keysOf(a);
    const oldKey = brokerEncryptionKey(start);
    const r = await admin(a, '/v1/admin/broker/keys/encryption/rotate', { reason: 'scheduled rotation' });
    t.equal(r.status, 201);
    t.equal(r.json.type, 'broker-encryption-keys-rotated');
    const { event, kid } = openRegistryEvent(r.json.event, a.gw.keyring.verificationKeys);
    t.equal(kid, a.gw.keyring.signing.kid, 'signed by the broker');
    t.same(event.retired!.map((x) => x.kid).sort(), encKids(start), 'both previous keys retired');
    const logged = decodeEntry(
      (await a.gw.bus.getMessage(STREAMS.log, r.json.log_index + 1))!.data,
    ) as RegistryLogEntry;
    t.equal(logged.kind, 'registry');
    t.equal(logged.event_id, r.json.event_id);
    t.equal(logged.actor, OPERATOR);

    const fresh = await keysOf(a);
    t.equal(encKids(fresh).length, 2);
    t.notOk(
      encKids(fresh).some((k) => encKids(start).includes(k)),
      'the old keys are no longer published',
    );
    const ms = await withinASecond(
      'the other instance publishes the new keys',
      async () => JSON.stringify(encKids(await keysOf(b))) === JSON.stringify(encKids(fresh)),
    );
    t.ok(ms <= 1000, `taken up by the other instance in ${ms} ms`);

    t.equal(
      (await send(b, 'vn-customs', 'VN', { brokerKey: oldKey })).status,
      202,
      'a notice sealed to the old key is accepted during the grace period (other instance)',
    );
    t.equal(
      (await send(a, 'vn-customs', 'VN', { brokerKey: brokerEncryptionKey(fresh) })).status,
      202,
      'and one sealed to the new key',
    );

    // A second rotation with no grace: the keys of the first stop at once, everywhere.
    const second = await admin(b, '/v1/admin/broker/keys/encryption/rotate', { grace_seconds: 0 });
    t.equal(second.status, 201);
    await withinASecond(
      'the first instance takes up the second rotation',
      async () => !encKids(await keysOf(a)).some((k) => encKids(fresh).includes(k)),
    );
    for (const g of [a, b]) {
      const refused = await send(g, 'vn-customs', 'VN', { brokerKey: brokerEncryptionKey(fresh) });
      t.equal(refused.status, 400, 'a key rotated out without grace no longer decrypts');
      t.equal(refused.json.code, 'key-unknown');
    }
    t.equal(
      (await send(a, 'vn-customs', 'VN', { brokerKey: oldKey })).status,
      202,
      'the original keys are still in their own grace period',
    );
    const history = (await a.gw.app.inject({ method: 'GET', url: '/v1/keys/history' })).json<{
      encryption: { kid: string; current: boolean; decrypt_until?: string }[];
    }>();
    t.equal(history.encryption.filter((k) => k.current).length, 2);
    t.ok(
      history.encryption.filter((k) => !k.current).every((k) => typeof k.decrypt_until === 'string'),
      'rotated-out keys show until when they decrypt',
    );
    t.notOk(JSON.stringify(history).includes('"d"'), 'no private part in the history');
  },
);

t.test(
  'broker signing key: the successor is vouched for by its predecessor; old receipts and checkpoints stay verifiable',
  async (t) => {
    const k0 = a.gw.keyring.signing.kid;
    const before = await send(a, 'th-customs', 'TH');
    t.equal(before.status, 202);
    const r = await admin(b, '/v1/admin/broker/keys/signing/rotate', {});
    t.equal(r.status, 201);
    const { event, kid } = openRegistryEvent(r.json.event, b.gw.keyring.verificationKeys);
    t.equal(kid, k0, 'the rotation event is signed by the outgoing key');
    const k1 = String(event.added![0]!.kid);
    t.not(k1, k0);
    await withinASecond('the other instance signs with the new key', () => a.gw.keyring.signing.kid === k1);
    const after = await send(a, 'th-customs', 'TH');
    t.equal(after.status, 202);
    const jwks = await keysOf(b);
    t.equal(
      (await verifyReceipt(before.json.receipt, jwks)).notice_id,
      before.json.notice_id,
      'a receipt by the old key verifies against the published keys',
    );
    t.equal(
      (await verifyReceipt(after.json.receipt, jwks)).notice_id,
      after.json.notice_id,
      'a receipt by the new key too',
    );
    t.equal(JSON.parse(Buffer.from(after.json.receipt.split('.')[0], 'base64url').toString()).kid, k1);
    const history = (await b.gw.app.inject({ method: 'GET', url: '/v1/keys/history' })).json<{
      signing: { kid: string; current: boolean; retired_at?: string }[];
    }>();
    t.same(
      history.signing.slice(0, 2).map((k) => [k.kid, k.current]),
      [
        [k1, true],
        [k0, false],
      ],
    );
    t.ok(history.signing[1]!.retired_at);
    t.notOk(
      a.gw.keyring.file.signing.slice(1).some((k) => k.d !== undefined),
      'retired signing keys keep no private part',
    );
  },
);

t.test('agency keys: rotate, revoke and add, in force on every instance within a second', async (t) => {
  const old = a.creds('th-customs').signing;
  const next = await makeKeyPair('Ed25519');
  const rot = await admin(a, `/v1/admin/agencies/th-customs/keys/${old.kid}/rotate`, {
    key: { kid: next.kid, use: 'sig', jwk: next.publicJwk },
    overlap_seconds: 3600,
  });
  t.equal(rot.status, 201);
  t.equal(rot.json.type, 'agency-key-rotated');
  const ms = await withinASecond(
    'the other instance accepts the new key',
    async () => (await send(b, 'th-customs', 'TH', { signingKey: next.privateJwk })).status === 202,
  );
  t.ok(ms <= 1000, `new key in force on the other instance in ${ms} ms`);
  t.equal((await send(b, 'th-customs', 'TH')).status, 202, 'the old key works through the overlap');
  t.ok(b.gw.registry.snapshot.key(old.kid as string)?.key.not_after, 'the old key now ends');

  const rev = await admin(b, `/v1/admin/agencies/th-customs/keys/${old.kid}/revoke`, { reason: 'device lost' });
  t.equal(rev.status, 201);
  await withinASecond(
    'the first instance refuses the revoked key',
    async () => (await send(a, 'th-customs', 'TH')).json.code === 'key-revoked',
  );
  t.equal(
    (await send(a, 'th-customs', 'TH', { signingKey: next.privateJwk })).status,
    202,
    'its successor still works',
  );
  t.equal(
    (await admin(a, `/v1/admin/agencies/th-customs/keys/${old.kid}/revoke`, {})).json.code,
    'key-conflict',
    'revoking twice',
  );
  t.equal(
    (
      await admin(a, `/v1/admin/agencies/th-customs/keys/${old.kid}/rotate`, {
        key: { kid: (await makeKeyPair('Ed25519')).kid, use: 'sig', jwk: next.publicJwk },
      })
    ).json.code,
    'key-conflict',
    'rotating a revoked key',
  );
  const past = await admin(a, `/v1/admin/agencies/th-customs/keys/${next.kid}/revoke`, {
    revoked_at: '2020-01-01T00:00:00Z',
  });
  t.equal(past.status, 400, 'a revocation may not be dated back');

  const enc = await makeKeyPair('X25519');
  const add = await admin(a, '/v1/admin/agencies/th-customs/keys', {
    key: { kid: enc.kid, use: 'enc', jwk: enc.publicJwk },
  });
  t.equal(add.status, 201);
  await withinASecond('the other instance lists the added key', () =>
    b.gw.registry.snapshot.agency('th-customs')!.keys.some((k) => k.kid === enc.kid && k.use === 'enc'),
  );
});

t.test('a retried change is made once; an id reused for another change is refused', async (t) => {
  const k = await makeKeyPair('Ed25519');
  const id = randomUUID();
  const body = { id, key: { kid: k.kid, use: 'sig', jwk: k.publicJwk } };
  const first = await admin(a, '/v1/admin/agencies/kh-police-adp/keys', body);
  t.equal(first.status, 201);
  const before = await logCount();
  const again = await admin(b, '/v1/admin/agencies/kh-police-adp/keys', body);
  t.equal(again.status, 200, 'the retry, through the other instance');
  t.equal(again.json.duplicate, true);
  t.equal(again.json.log_index, first.json.log_index);
  t.equal(again.json.event, first.json.event, 'the same signed event');
  t.equal(await logCount(), before, 'nothing logged twice');
  t.equal(
    a.gw.registry.snapshot.agency('kh-police-adp')!.keys.filter((x) => x.kid === k.kid).length,
    1,
    'the key is listed once',
  );
  const other = await admin(a, '/v1/admin/broker/keys/signing/rotate', { id });
  t.equal(other.status, 409);
  t.equal(other.json.code, 'key-conflict');
});

t.test(
  'rotation while notices flow: nothing refused that should pass, every receipt verifies, the whole log verifies',
  async (t) => {
    const senders = [
      { agency: 'vn-customs', country: 'VN' },
      { agency: 'la-customs', country: 'LA' },
      { agency: 'cn-customs', country: 'CN' },
    ];
    // A sender keeps the broker key it fetched (as a client caching GET /v1/keys does) and its own signing key until told otherwise.
    let brokerKey = brokerEncryptionKey(await keysOf(a));
    // Assigned once, below, while the senders' loops (which read it) are running.
    // eslint-disable-next-line prefer-const
    let laKey: JWK | undefined;
    const results: { status: number; code?: string; receipt?: string }[] = [];
    let stop = false;
    const loops = senders.map(async (s, i) => {
      let n = 0;
      while (!stop) {
        const g = (n++ + i) % 2 === 0 ? a : b;
        const res = await send(g, s.agency, s.country, {
          brokerKey,
          ...(s.agency === 'la-customs' && laKey ? { signingKey: laKey } : {}),
        });
        results.push({ status: res.status, code: res.json.code, receipt: res.json.receipt });
      }
    });
    const pause = () => new Promise((r) => setTimeout(r, 150));
    await pause();
    const changes = [];
    changes.push(await admin(a, '/v1/admin/broker/keys/encryption/rotate', { reason: 'in flight' }));
    await pause();
    changes.push(await admin(b, '/v1/admin/broker/keys/signing/rotate', {}));
    await pause();
    const laNext = await makeKeyPair('ES256');
    changes.push(
      await admin(a, `/v1/admin/agencies/la-customs/keys/${a.creds('la-customs').signing.kid}/rotate`, {
        key: { kid: laNext.kid, use: 'sig', jwk: laNext.publicJwk },
      }),
    );
    await pause();
    laKey = laNext.privateJwk; // the agency switches to its new key once the hub confirms
    brokerKey = brokerEncryptionKey(await keysOf(b)); // and senders pick up the new broker key at some point
    await pause();
    changes.push(await admin(b, '/v1/admin/broker/keys/signing/rotate', {}));
    await pause();
    stop = true;
    await Promise.all(loops);

    t.same(
      changes.map((c) => c.status),
      [201, 201, 201, 201],
      'every change made',
    );
    t.ok(results.length >= 20, `${results.length} notices sent during the rotations`);
    t.same(
      results.filter((r) => r.status !== 202),
      [],
      'no notice refused',
    );
    const jwks = await keysOf(a);
    let verified = 0;
    for (const r of results) if ((await verifyReceipt(r.receipt!, jwks)).notice_id) verified++;
    t.equal(verified, results.length, 'every receipt verifies against the published key history');

    // The whole log: every entry under a checkpoint, every notice's origin signature against the agency key history.
    const total = await logCount();
    await waitFor(
      () => (a.gw.checkpointer!.status.checkpointSize === total ? true : undefined),
      `a checkpoint over all ${total} entries`,
      15_000,
    );
    const archive = await exportArchive(
      a.gw.bus,
      brokerId,
      a.gw.keyring.verificationKeys.map((k) => ({
        kty: String(k.kty),
        crv: String(k.crv),
        x: String(k.x),
        kid: String(k.kid),
      })),
      a.gw.keyring,
    );
    const report = await auditLogWithOrigins(archiveToAuditInput(archive));
    t.same(report.problems, [], 'no problem found');
    t.ok(report.ok, 'the log verifies');
    t.equal(report.entries, total);
    t.ok(report.signaturesChecked! >= results.length, `${report.signaturesChecked} origin signatures checked`);
    const kinds = archive.entries.map((e) => decodeEntry(Buffer.from(e.entry, 'base64url')).kind);
    t.ok(
      kinds.filter((k) => k === 'registry').length >= 4 + 4,
      'every key change of this file is a registry entry in the log',
    );
    // Each registry event: its commitment, the event its entry names, and the broker's signature against the key history.
    t.equal(
      report.registryEventsChecked,
      kinds.filter((k) => k === 'registry').length,
      'every registry event checked against its entry and the broker key history',
    );
    // The auditor's summary says so too.
    const dir = mkdtempSync(join(tmpdir(), 'liaison-lifecycle-audit-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'archive.json'), JSON.stringify(archive));
    const { code, stdout: summary, stderr } = await runCli(['audit', 'verify', '--archive', join(dir, 'archive.json')]);
    t.equal(code, 0, stderr);
    t.match(
      summary,
      new RegExp(
        `\\nregistry: +${report.registryEventsChecked} registry events \\(key, agency and operation changes\\) checked against their entries and the broker key history\\n`,
      ),
    );
    const forged = JSON.parse(JSON.stringify(archive)) as typeof archive;
    const ev = forged.registry_events!.find((e) => eventType(e.jws) === 'agency-key-rotated')!;
    const [h, p, sig] = ev.jws.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    ev.jws = [h, Buffer.from(JSON.stringify({ ...payload, retired: [] })).toString('base64url'), sig].join('.');
    const tampered = await auditLogWithOrigins(archiveToAuditInput(forged));
    t.notOk(tampered.ok, 'a changed registry event is caught');
    t.same(
      tampered.problems.map((x) => x.code),
      ['registry-event-mismatch'],
    );
  },
);

t.test('liaison admin: an agency rotates to a key it made itself, the operator revokes the old one', async (t) => {
  const url = await a.gw.app.listen({ host: '127.0.0.1', port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'liaison-admin-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => runCli(args);
  const file = join(dir, 'cn-customs.json');
  t.equal((await cli('keys', 'generate', '--agency', 'cn-customs', '--country', 'CN', '--out', file)).code, 0);
  const made = JSON.parse(readFileSync(file, 'utf8')) as { signing: JWK };
  const old = a.creds('cn-customs').signing.kid as string;
  const op = ['--as', OPERATOR, '--data-dir', a.dataDir, '--url', url];
  const rotated = await cli(
    'admin',
    'rotate-key',
    ...op,
    '--agency',
    'cn-customs',
    '--kid',
    old,
    '--new-key',
    file,
    '--overlap',
    '0',
    '--reason',
    'yearly',
  );
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, /^agency-key-rotated: event [0-9a-f-]{36} at log index \d+\n$/);
  t.notOk(
    readFileSync(file, 'utf8').length === 0 || rotated.stdout.includes(made.signing.d as string),
    'no private key printed',
  );
  await withinASecond(
    'the other instance accepts the agency’s own new key',
    async () => (await send(b, 'cn-customs', 'CN', { signingKey: made.signing })).status === 202,
  );
  const ended = await send(b, 'cn-customs', 'CN');
  t.equal(ended.json.code, 'key-revoked', 'with no overlap the old key ends at once');
  const revoked = await cli('admin', 'revoke-key', ...op, '--agency', 'cn-customs', '--kid', old, '--json');
  t.equal(revoked.code, 0, revoked.stderr);
  t.equal(JSON.parse(revoked.stdout).type, 'agency-key-revoked');
  const again = await cli('admin', 'revoke-key', ...op, '--agency', 'cn-customs', '--kid', old);
  t.equal(again.code, 1);
  t.match(again.stderr, /refused: 409 key-conflict/);
  const id = randomUUID();
  const enc = await cli('admin', 'rotate-encryption-keys', ...op, '--grace', '600', '--id', id);
  const enc2 = await cli('admin', 'rotate-encryption-keys', ...op, '--grace', '600', '--id', id);
  t.equal(enc.code, 0, enc.stderr);
  t.match(enc2.stdout, /\(already recorded\)/, 'the same id twice: one rotation');
  t.equal((await cli('admin', 'rotate-signing-key', ...op)).code, 0);
  const nobody = await cli('admin', 'rotate-signing-key', '--as', 'vn-c04', '--data-dir', a.dataDir, '--url', url);
  t.match(nobody.stderr, /refused: 403 forbidden/);
  t.match((await cli('admin', 'revoke-key', ...op, '--kid', old)).stderr, /needs --agency ID/);
});
