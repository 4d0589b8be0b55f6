/** The pure parts of the key lifecycle: keyring rotations, agency key events, and the audit's registry-event check. */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKek } from '../broker/keys/keyring-store.js';
import { applyAgencyEvent } from '../broker/admin/agency-keys.js';
import { registryLogEntry, signRegistryEvent, type RegistryEvent } from '../broker/admin/registry-event.js';
import { auditLog } from '../broker/audit/verify.js';
import {
  BrokerKeyring,
  generateBrokerKeyFile,
  rotateEncryptionKeys,
  rotateSigningKey,
} from '../broker/keys/broker-keys.js';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { encodeEntry } from '../broker/log/entry.js';
import type { Agency } from '../broker/registry/model.js';

t.setTimeout(60_000);
const T0 = new Date('2026-11-26T10:00:00Z');
const later = (s: number) => new Date(T0.getTime() + s * 1000);

t.test(
  'encryption rotation: new keys published, old ones decrypt through the grace period only, expired ones destroyed',
  async (t) => {
    const f0 = await generateBrokerKeyFile(T0);
    const old = f0.encryption.map((k) => k.kid!);
    const r1 = await rotateEncryptionKeys(f0, T0, 60);
    t.same(r1.retired.map((x) => x.kid).sort(), [...old].sort());
    t.same(r1.dropped, []);
    let now = T0;
    const ring = await BrokerKeyring.fromFile('hub', r1.file, () => now);
    t.same(
      ring
        .jwks()
        .keys.filter((k) => k.use === 'enc')
        .map((k) => k.kid)
        .sort(),
      r1.added.map((k) => k.kid).sort(),
      'only the new keys are published',
    );
    t.ok(ring.decryptionKey(old[0]!), 'an old key decrypts during the grace period');
    now = later(61);
    t.equal(ring.decryptionKey(old[0]!), undefined, 'and not after it');
    t.ok(ring.decryptionKey(String(r1.added[0]!.kid)), 'the new keys do');
    const r2 = await rotateEncryptionKeys(r1.file, later(61), 60);
    t.same([...r2.dropped].sort(), [...old].sort(), 'the next rotation destroys keys past their grace period');
    t.notOk(r2.file.encryption.some((k) => old.includes(k.kid!)));
    t.equal(r2.file.encryption.length, 4, 'two current, two in their grace period');
  },
);

t.test('signing rotation: the old key keeps only its public part, in the history', async (t) => {
  const f0 = await generateBrokerKeyFile(T0);
  const r = await rotateSigningKey(f0, later(10));
  t.equal(r.file.signing[0]!.kid, r.added.kid);
  t.ok(r.file.signing[0]!.d, 'the new key signs');
  t.equal(r.file.signing[1]!.d, undefined, 'the old key can sign no more');
  const ring = await BrokerKeyring.fromFile('hub', r.file);
  t.same(
    ring.verificationKeys.map((k) => k.kid),
    [r.added.kid, f0.signing[0]!.kid],
  );
  const h = ring.history();
  t.equal(h.signing[1]!.retired_at, later(10).toISOString());
  t.equal(h.signing[0]!.current, true);
  await t.rejects(
    BrokerKeyring.fromFile('hub', { ...r.file, signing: r.file.signing.slice(1) }),
    /no private part/,
    'a keyring whose current key is public only is refused',
  );
});

t.test('agency key events apply idempotently', async (t) => {
  const k1 = await makeKeyPair('Ed25519');
  const k2 = await makeKeyPair('Ed25519');
  const agency: Agency = {
    id: 'x',
    country: 'VN',
    name: 'X',
    roles: ['publish'],
    keys: [{ kid: k1.kid, use: 'sig', jwk: k1.publicJwk as Agency['keys'][number]['jwk'], status: 'active' }],
  };
  const base = {
    id: '00000000-0000-4000-8000-000000000000',
    subject: { agency: 'x' },
    at: T0.toISOString(),
    actor: { agency: 'op', kid: 'k' },
  };
  const rotated = applyAgencyEvent(agency, {
    ...base,
    type: 'agency-key-rotated',
    added: [{ kid: k2.kid, use: 'sig', jwk: k2.publicJwk as Agency['keys'][number]['jwk'] }],
    retired: [{ kid: k1.kid, until: later(60).toISOString() }],
  });
  t.same(
    applyAgencyEvent(rotated, {
      ...base,
      type: 'agency-key-rotated',
      added: [{ kid: k2.kid, use: 'sig', jwk: k2.publicJwk as Agency['keys'][number]['jwk'] }],
      retired: [{ kid: k1.kid, until: later(60).toISOString() }],
    }),
    rotated,
    'applied twice, the same record',
  );
  t.equal(rotated.keys.length, 2);
  t.equal(rotated.keys[0]!.not_after, later(60).toISOString());
  const revoked = applyAgencyEvent(rotated, {
    ...base,
    type: 'agency-key-revoked',
    revoked: [{ kid: k1.kid, revoked_at: later(5).toISOString() }],
  });
  t.equal(revoked.keys[0]!.status, 'revoked');
  const again = applyAgencyEvent(revoked, {
    ...base,
    type: 'agency-key-revoked',
    revoked: [{ kid: k1.kid, revoked_at: later(9).toISOString() }],
  });
  t.equal(again.keys[0]!.revoked_at, later(5).toISOString(), 'a later replay does not move the revocation');
  const shorter = applyAgencyEvent(rotated, {
    ...base,
    type: 'agency-key-rotated',
    retired: [{ kid: k1.kid, until: later(120).toISOString() }],
  });
  t.equal(shorter.keys[0]!.not_after, later(60).toISOString(), 'an end already earlier is kept');
});

t.test('the audit checks a registry event against its entry and the broker key history', async (t) => {
  const f = await generateBrokerKeyFile(T0);
  const ring = await BrokerKeyring.fromFile('hub', f);
  const event: RegistryEvent = {
    id: '11111111-1111-4111-8111-111111111111',
    type: 'broker-signing-key-rotated',
    subject: { broker: 'hub' },
    at: T0.toISOString(),
    actor: { agency: 'op', kid: 'k' },
  };
  const jws = await signRegistryEvent(ring.signing, event);
  const entry = encodeEntry(registryLogEntry(event, jws, ring.signing.kid));
  const input = (events: { eventId: string; jws: string }[], keys = ring.verificationKeys) => ({
    origin: 'hub',
    brokerKeys: keys.map((k) => ({ kty: String(k.kty), crv: String(k.crv), x: String(k.x), kid: String(k.kid) })),
    entries: [{ index: 0, bytes: entry }],
    checkpoints: [],
    registryEvents: events,
  });
  const codes = (events: { eventId: string; jws: string }[], keys = ring.verificationKeys) =>
    auditLog(input(events, keys))
      .problems.map((p) => p.code)
      .filter((c) => c.startsWith('registry'));
  t.same(codes([{ eventId: event.id, jws }]), [], 'the genuine event');
  t.equal(auditLog(input([{ eventId: event.id, jws }])).registryEventsChecked, 1);
  t.same(codes([{ eventId: '22222222-2222-4222-8222-222222222222', jws }]), ['registry-event-not-in-log']);
  const [h, p] = jws.split('.');
  const other = await makeKeyPair('Ed25519', ring.signing.kid);
  const forgedSig = `${h}.${p}.${Buffer.from(createHash('sha512').update('x').digest()).toString('base64url')}`;
  // The hub re-commits a forged signature: the commitment matches, the signature does not.
  const recommitted = encodeEntry(registryLogEntry(event, forgedSig, ring.signing.kid));
  const r = auditLog({
    ...input([{ eventId: event.id, jws: forgedSig }]),
    entries: [{ index: 0, bytes: recommitted }],
  });
  t.match(r.problems.find((x) => x.code === 'registry-event-mismatch')?.message, /signature does not verify/);
  t.match(
    auditLog(input([{ eventId: event.id, jws }], [other.publicJwk])).problems.find(
      (x) => x.code === 'registry-event-mismatch',
    )?.message,
    /signature does not verify/,
    'another key under the same kid',
  );
});

t.test('the key-encryption key file: made once, 0600, and refused when it is not 32 bytes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-kek-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'broker', 'kek');
  t.throws(() => loadOrCreateKek(path, false), /does not exist/, 'an operator-named file must exist');
  const made = loadOrCreateKek(path, true);
  t.equal(made.key.length, 32);
  t.equal(statSync(path).mode & 0o777, 0o600);
  t.same(loadOrCreateKek(path, true), made, 'read back, not made again');
  writeFileSync(path, Buffer.alloc(16).toString('base64url'));
  t.throws(() => loadOrCreateKek(path, false), /must be 32 bytes/);
});
