import t, { type Test } from 'tap';
import { LiaisonError } from '../broker/core/errors.js';
import { evaluatePolicy, NOT_A_MEMBER } from '../broker/ingest/policy.js';
import type { NoticeHeader } from '../broker/core/notice.js';
import {
  keyStateAt,
  operationActiveAt,
  RegistrySnapshot,
  type Agency,
  type AgencyKey,
} from '../broker/registry/model.js';

const key = (kid: string): AgencyKey => ({
  kid,
  use: 'sig',
  jwk: { kty: 'OKP', crv: 'Ed25519', x: 'x' },
  status: 'active',
});
const encKey = (kid: string, patch: Partial<AgencyKey> = {}): AgencyKey => ({
  kid,
  use: 'enc',
  jwk: { kty: 'OKP', crv: 'X25519', x: 'x' },
  status: 'active',
  ...patch,
});
const agency = (
  id: string,
  country: string,
  roles: Agency['roles'] = ['publish', 'subscribe'],
  keys = [key(`${id}-sig`), encKey(`${id}-enc`)],
): Agency => ({ id, country, name: id, roles, keys });
const reg = new RegistrySnapshot(
  [
    agency('vn-customs', 'VN'),
    agency('th-customs', 'TH'),
    agency('th-police', 'TH'),
    agency('kh-police', 'KH'),
    agency('la-customs', 'LA', ['publish']),
    agency('gb-bf', 'GB'),
    agency('auditor', 'FR', ['audit']),
    // Receiving members in name only: no key a delivery could be sealed to (none, a signing key only, revoked, not yet valid, an unusable curve).
    agency('th-nokey', 'TH', undefined, [key('th-nokey-sig')]),
    agency('kh-revoked', 'KH', undefined, [encKey('kh-revoked-enc', { status: 'revoked' })]),
    agency('kh-later', 'KH', undefined, [encKey('kh-later-enc', { not_before: '2099-01-01T00:00:00Z' })]),
    agency('kh-ed', 'KH', undefined, [encKey('kh-ed-enc', { jwk: { kty: 'OKP', crv: 'Ed25519', x: 'x' } })]),
    {
      ...agency('kh-pgp', 'KH', undefined, [key('kh-pgp-sig')]),
      delivery_format: 'openpgp',
      openpgp_keys: [{ kid: 'A'.repeat(40), status: 'active', armored: '' } as never],
    },
  ],
  [
    {
      id: 'op',
      name: 'op',
      status: 'active',
      members: [
        'vn-customs',
        'th-customs',
        'th-police',
        'kh-police',
        'la-customs',
        'auditor',
        'ghost',
        'th-nokey',
        'kh-revoked',
        'kh-later',
        'kh-ed',
        'kh-pgp',
      ],
      categories: [],
    },
    { id: 'paused', name: 'paused', status: 'inactive', members: ['vn-customs', 'th-customs'], categories: [] },
    {
      id: 'future',
      name: 'future',
      status: 'active',
      members: ['vn-customs', 'th-customs'],
      categories: [],
      start: '2099-01-01',
    },
  ],
);
const now = new Date('2026-11-26T10:00:00Z');
const notice = (patch: Partial<NoticeHeader> = {}): NoticeHeader => ({
  id: 'x',
  type: 'seizure-report',
  schema_version: '1.0',
  created_at: now.toISOString(),
  operation: 'op',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['TH'],
  tlp: 'AMBER',
  priority: 'normal',
  language: 'en',
  summary: 's',
  body: {},
  ...patch,
});
const denied = (t: Test, fn: () => unknown, reason: RegExp) => {
  try {
    fn();
    t.fail('expected policy-denied');
  } catch (e) {
    t.ok(e instanceof LiaisonError);
    t.equal((e as LiaisonError).code, 'policy-denied');
    t.match((e as LiaisonError).publicDetail, reason);
  }
};

t.test('expansion of addressees', async (t) => {
  t.same(
    evaluatePolicy(notice(), 'vn-customs', reg, now).recipients,
    ['th-customs', 'th-police'],
    'a country: its receiving members',
  );
  t.same(
    evaluatePolicy(notice({ addressees: ['*'] }), 'vn-customs', reg, now).recipients,
    ['kh-pgp', 'kh-police', 'th-customs', 'th-police'],
    '"*": every receiving member but the origin, not publish-only or audit-only agencies, not unknown ids, none without a key',
  );
  t.same(evaluatePolicy(notice({ addressees: ['kh-police', 'TH'] }), 'vn-customs', reg, now).recipients, [
    'kh-police',
    'th-customs',
    'th-police',
  ]);
  t.same(evaluatePolicy(notice({ tlp: 'RED', addressees: ['th-police'] }), 'vn-customs', reg, now).recipients, [
    'th-police',
  ]);
  t.same(
    evaluatePolicy(notice({ tlp: 'AMBER+STRICT', addressees: ['th-police', 'kh-police'] }), 'vn-customs', reg, now)
      .recipients,
    ['kh-police', 'th-police'],
  );
});

t.test('a receipt names only agencies the router can seal to: no key, no recipient', async (t) => {
  t.same(
    evaluatePolicy(notice({ addressees: ['TH'] }), 'vn-customs', reg, now).recipients,
    ['th-customs', 'th-police'],
    'a country leaves out its member without an encryption key',
  );
  t.same(
    evaluatePolicy(notice({ addressees: ['KH'] }), 'vn-customs', reg, now).recipients,
    ['kh-pgp', 'kh-police'],
    'and revoked, not-yet-valid and unusable keys; an OpenPGP certificate counts',
  );
  for (const id of ['th-nokey', 'kh-revoked', 'kh-later', 'kh-ed'])
    denied(t, () => evaluatePolicy(notice({ addressees: [id] }), 'vn-customs', reg, now), /not a receiving member/);
});

t.test('refusals', async (t) => {
  denied(t, () => evaluatePolicy(notice(), 'nobody', reg, now), /not in the registry/);
  denied(t, () => evaluatePolicy(notice(), 'th-customs', reg, now), /origin\.agency/);
  denied(
    t,
    () => evaluatePolicy(notice({ origin: { country: 'TH', agency: 'vn-customs' } }), 'vn-customs', reg, now),
    /country/,
  );
  denied(
    t,
    () => evaluatePolicy(notice({ origin: { country: 'FR', agency: 'auditor' } }), 'auditor', reg, now),
    /may not publish/,
  );
  // To a non-member, a missing, a running and an inactive operation read the same; a member is told it is not active.
  const notMember = new RegExp(`^${NOT_A_MEMBER}$`);
  denied(t, () => evaluatePolicy(notice({ operation: 'nope' }), 'vn-customs', reg, now), notMember);
  denied(t, () => evaluatePolicy(notice({ origin: { country: 'GB', agency: 'gb-bf' } }), 'gb-bf', reg, now), notMember);
  denied(
    t,
    () =>
      evaluatePolicy(notice({ operation: 'paused', origin: { country: 'GB', agency: 'gb-bf' } }), 'gb-bf', reg, now),
    notMember,
  );
  denied(
    t,
    () =>
      evaluatePolicy(notice({ operation: 'future', origin: { country: 'GB', agency: 'gb-bf' } }), 'gb-bf', reg, now),
    notMember,
  );
  denied(t, () => evaluatePolicy(notice({ operation: 'paused' }), 'vn-customs', reg, now), /not active/);
  denied(t, () => evaluatePolicy(notice({ operation: 'future' }), 'vn-customs', reg, now), /not active/);
  denied(
    t,
    () => evaluatePolicy(notice({ addressees: ['GB'] }), 'vn-customs', reg, now),
    /country has no receiving member/,
  );
  denied(
    t,
    () => evaluatePolicy(notice({ addressees: ['LA'] }), 'vn-customs', reg, now),
    /country has no receiving member/,
  );
  denied(t, () => evaluatePolicy(notice({ addressees: ['gb-bf'] }), 'vn-customs', reg, now), /not a receiving member/);
  denied(
    t,
    () => evaluatePolicy(notice({ addressees: ['VN'] }), 'vn-customs', reg, now),
    /country has no receiving member/,
  );
  denied(t, () => evaluatePolicy(notice({ addressees: ['*', 'TH'] }), 'vn-customs', reg, now), /cannot be combined/);
  denied(
    t,
    () => evaluatePolicy(notice({ tlp: 'RED', addressees: ['*'] }), 'vn-customs', reg, now),
    /RED.*never to "\*"/,
  );
  denied(t, () => evaluatePolicy(notice({ tlp: 'RED', addressees: ['TH'] }), 'vn-customs', reg, now), /named agencies/);
  denied(
    t,
    () => evaluatePolicy(notice({ tlp: 'AMBER+STRICT', addressees: ['*'] }), 'vn-customs', reg, now),
    /AMBER\+STRICT/,
  );
  denied(t, () => evaluatePolicy(notice({ addressees: [] }), 'vn-customs', reg, now), /no recipient/);
});

t.test('key states and operation windows', async (t) => {
  const k = key('k');
  t.equal(keyStateAt(k, now), 'active');
  t.equal(keyStateAt({ ...k, status: 'revoked' }, now), 'revoked');
  t.equal(keyStateAt({ ...k, status: 'revoked', revoked_at: '2026-11-26T09:00:00Z' }, now), 'revoked');
  t.equal(
    keyStateAt({ ...k, status: 'revoked', revoked_at: '2026-11-27T00:00:00Z' }, now),
    'active',
    'a revocation dated later is not yet in force',
  );
  t.equal(keyStateAt({ ...k, not_before: '2026-12-01T00:00:00Z' }, now), 'not-yet-valid');
  t.equal(keyStateAt({ ...k, not_after: '2026-11-01T00:00:00Z' }, now), 'expired');
  const op = { id: 'o', name: 'o', status: 'active' as const, members: [], categories: [] };
  t.ok(operationActiveAt({ ...op, start: '2026-11-26', end: '2026-11-26' }, now), 'start and end days are inclusive');
  t.notOk(operationActiveAt({ ...op, end: '2026-11-25' }, now));
});

t.test('an ambiguous kid names no key', async (t) => {
  const a = agency('a', 'VN');
  const b = { ...agency('b', 'TH'), keys: [key('a-sig')] };
  const r = new RegistrySnapshot([a, b], []);
  t.equal(r.key('a-sig'), undefined);
  t.equal(RegistrySnapshot.fromSeed({ agencies: [a], operations: [] }).key('a-sig')?.agency.id, 'a');
});
