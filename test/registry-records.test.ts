/** The pure rules of agency-set and operation-set (broker/admin/registry-records.ts). */
import t from 'tap';
import type { RegistryEvent } from '../broker/admin/registry-event.js';
import { applySetEvent, checkAgencyRecord, checkOperationRecord } from '../broker/admin/registry-records.js';
import { LiaisonError, type ProblemCode } from '../broker/core/errors.js';
import { rejectsWith } from './helpers/assert-error.js';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { RegistrySnapshot, type Agency, type Operation, type RegistryJwk } from '../broker/registry/model.js';

const sig = await makeKeyPair('Ed25519', 'vn-sig');
const sigJwk = sig.publicJwk as RegistryJwk;
const vn: Agency = {
  id: 'vn-customs',
  country: 'VN',
  name: 'Vietnam Customs',
  roles: ['publish', 'subscribe'],
  keys: [{ kid: 'vn-sig', use: 'sig', jwk: sigJwk, status: 'active' }],
};
const th: Agency = { id: 'th-customs', country: 'TH', name: 'Thai Customs', roles: ['subscribe'], keys: [] };
const snapshot = new RegistrySnapshot([vn, th], []);
const valid = () => [];
const isAgency = (id: string) => snapshot.agency(id) !== undefined;
const event = (
  type: RegistryEvent['type'],
  record: unknown,
  id = '00000000-0000-4000-8000-000000000001',
  extra: Partial<RegistryEvent> = {},
): RegistryEvent =>
  ({
    id,
    type,
    subject: { operation: 'op' },
    at: '2026-11-27T10:00:00Z',
    actor: { agency: 'hub-operator', kid: 'op' },
    record,
    ...extra,
  }) as RegistryEvent;
const refusal = (code: ProblemCode, fn: () => unknown) =>
  rejectsWith(t, Promise.resolve().then(fn), LiaisonError, code);

t.test('a set applies once, and never over a later one', async (t) => {
  const op: Operation = { id: 'op', name: 'Op', status: 'active', members: ['vn-customs'], categories: [] };
  const set5 = applySetEvent<Operation>(undefined, event('operation-set', op), 5);
  t.same(set5, { ...op, changed_by: { event_id: '00000000-0000-4000-8000-000000000001', log_index: 5 } });
  const later = event(
    'operation-set',
    { ...op, members: ['vn-customs', 'th-customs'] },
    '00000000-0000-4000-8000-000000000002',
  );
  const set9 = applySetEvent<Operation>(set5, later, 9);
  t.same(set9?.members, ['vn-customs', 'th-customs']);
  t.equal(
    applySetEvent<Operation>(set9, event('operation-set', op), 5),
    undefined,
    'the older event applied again: left as it is',
  );
  t.equal(applySetEvent<Operation>(set9, later, 9), undefined, 'the same event again: left as it is');
  t.throws(() => applySetEvent<Operation>(set9, event('agency-key-added', op), 10), TypeError, 'a key event is no set');
});

t.test("agency-set keeps the agency's keys, and gives a new agency the keys of its event", async (t) => {
  const rotated: Agency = { ...vn, keys: [...vn.keys, { kid: 'vn-sig-2', use: 'sig', jwk: sigJwk, status: 'active' }] };
  const fields = { id: 'vn-customs', country: 'VN', name: 'Tổng cục Hải quan', roles: ['publish'] };
  const next = applySetEvent<Agency>(rotated, event('agency-set', fields), 3);
  t.same(
    next?.keys.map((k) => k.kid),
    ['vn-sig', 'vn-sig-2'],
  );
  t.equal(next?.name, 'Tổng cục Hải quan');
  t.notOk('webhook' in next!, 'a field left out is gone');
  const fresh = applySetEvent<Agency>(
    undefined,
    event('agency-set', { ...fields, id: 'my-customs' }, undefined, {
      added: [{ kid: 'my-sig', use: 'sig', jwk: sigJwk }],
    }),
    4,
  );
  t.same(fresh?.keys, [{ kid: 'my-sig', use: 'sig', jwk: sigJwk, status: 'active' }]);
});

t.test('checking requested records', async (t) => {
  const op = { id: 'op', name: 'Op', status: 'active', members: ['vn-customs'], categories: [] };
  t.same(checkOperationRecord(isAgency, 'op', op, valid), op);
  await refusal('bad-request', () => checkOperationRecord(isAgency, 'op', { ...op, members: ['nobody'] }, valid));
  await refusal('bad-request', () => checkOperationRecord(isAgency, 'op', { ...op, id: 'other' }, valid));
  await refusal('bad-request', () =>
    checkOperationRecord(isAgency, 'op', op, () => ['/status must be equal to one of the allowed values']),
  );
  await refusal('bad-request', () => checkOperationRecord(isAgency, 'op', null, valid));

  const fields = { id: 'vn-customs', country: 'VN', name: 'Vietnam Customs', roles: ['publish'] };
  const own = [{ kid: 'vn-sig', use: 'sig' as const, jwk: sigJwk }];
  t.same(
    await checkAgencyRecord(snapshot, 'vn-customs', vn, fields, own, valid),
    { record: fields, added: [] },
    'an existing agency may list its own keys',
  );
  await refusal('bad-request', () =>
    checkAgencyRecord(snapshot, 'vn-customs', vn, fields, [{ kid: 'new', use: 'sig', jwk: sigJwk }], valid),
  );
  await refusal('bad-request', () =>
    checkAgencyRecord(snapshot, 'vn-customs', vn, { ...fields, country: 'LA' }, undefined, valid),
  );
  await refusal('bad-request', () =>
    checkAgencyRecord(snapshot, 'vn-customs', vn, { ...fields, keys: [] }, undefined, valid),
  );
  const other = await makeKeyPair('Ed25519');
  const otherJwk = other.publicJwk as RegistryJwk;
  const twice = [
    { kid: other.kid, use: 'sig' as const, jwk: otherJwk },
    { kid: other.kid.toLowerCase(), use: 'sig' as const, jwk: otherJwk },
  ];
  await refusal('bad-request', () =>
    checkAgencyRecord(snapshot, 'my-customs', undefined, { ...fields, id: 'my-customs', country: 'MY' }, twice, valid),
  );
  const made = await checkAgencyRecord(
    snapshot,
    'my-customs',
    undefined,
    { ...fields, id: 'my-customs', country: 'MY' },
    twice.slice(0, 1),
    valid,
  );
  t.same(
    made.added.map((k) => k.kid),
    [other.kid],
  );
});

t.test('an operation may be marked end to end, and the flag must be a boolean', async (t) => {
  const { createRegistryValidator } = await import('../broker/schemas/notice-validator.js');
  const check = createRegistryValidator();
  const errors = (r: unknown) => {
    const v = check({ agencies: [], operations: [r] });
    return v.ok ? [] : v.errors.map((e) => `${e.path} ${e.message}`);
  };
  const op = { id: 'op', name: 'Op', status: 'active', members: ['vn-customs'], categories: [], end_to_end: true };
  t.same(checkOperationRecord(isAgency, 'op', op, errors), op, 'end_to_end is kept');
  await refusal('bad-request', () => checkOperationRecord(isAgency, 'op', { ...op, end_to_end: 'yes' }, errors));
});
