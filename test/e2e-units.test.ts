/** The pure parts of end-to-end operations: the jose-e2e wire parser, the recipients check, the routing header schema, the mode rule, addressee expansion. */
import t from 'tap';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { parseE2eBody, parseE2eEnvelope } from '../adapters/e2e-jose/wire.js';
import {
  checkSupersedes,
  recipientKeys,
  routingHeaderOf,
  sealEndToEnd,
  type OperationDirectory,
} from '../broker/agency-client/end-to-end.js';
import { DeliveryVerificationError } from '../broker/agency-client/open-delivery.js';
import { buildWithdrawal } from '../broker/agency-client/withdrawal.js';
import { LiaisonError } from '../broker/core/errors.js';
import type { NoticeHeader } from '../broker/core/notice.js';
import { checkSealedFor } from '../broker/ingest/e2e-recipients.js';
import { evaluatePolicy } from '../broker/ingest/policy.js';
import { evaluateWithdrawalPolicy, supersededId } from '../broker/ingest/withdrawal-policy.js';
import type { NoticeLogEntry } from '../broker/log/entry.js';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { RegistrySnapshot, type Agency, type RegistryJwk } from '../broker/registry/model.js';
import { createRoutingHeaderValidator } from '../broker/schemas/routing-header-validator.js';
import { throwsWith } from './helpers/assert-error.js';
import { sampleNotice } from './helpers/gateway.js';

const encKey = async (kid: string) => {
  const { publicKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519', extractable: true });
  return { ...(await exportJWK(publicKey)), kid, use: 'enc' } as JWK;
};
const sig = await makeKeyPair('Ed25519', 'vn-sig');
const keys = {
  th: await encKey('th-enc'),
  la2: await encKey('la-enc-2'),
  la: await encKey('la-enc'),
  cn: await encKey('cn-enc'),
  old: await encKey('th-old'),
};
const agency = (
  id: string,
  country: string,
  enc: JWK[],
  roles: Agency['roles'] = ['publish', 'subscribe'],
): Agency => ({
  id,
  country,
  name: id,
  roles,
  keys: enc.map((k) => ({ kid: k.kid!, use: 'enc' as const, jwk: k as RegistryJwk, status: 'active' as const })),
});
const vn: Agency = {
  ...agency('vn-customs', 'VN', []),
  keys: [{ kid: 'vn-sig', use: 'sig', jwk: sig.publicJwk as RegistryJwk, status: 'active' }],
};
const th = agency('th-customs', 'TH', [keys.th]);
th.keys.unshift({
  kid: 'th-old',
  use: 'enc',
  jwk: keys.old as RegistryJwk,
  status: 'revoked',
  revoked_at: '2020-01-01T00:00:00Z',
});
const registry = new RegistrySnapshot(
  [vn, th, agency('la-customs', 'LA', [keys.la, keys.la2]), agency('cn-customs', 'CN', [keys.cn])],
  [
    {
      id: 'sealed',
      name: 'S',
      status: 'active',
      members: ['vn-customs', 'th-customs', 'la-customs', 'cn-customs'],
      categories: [],
      end_to_end: true,
    },
    { id: 'open', name: 'O', status: 'active', members: ['vn-customs', 'th-customs'], categories: [] },
  ],
);
const now = new Date();
const coded = (code: string) => ({ name: 'LiaisonError', code });

t.test('checkSealedFor: exactly one current key of each recipient, nobody else', async (t) => {
  const recipients = ['la-customs', 'th-customs'];
  t.doesNotThrow(() => checkSealedFor(recipients, ['th-enc', 'la-enc'], registry, now));
  for (const [what, kids] of [
    ['extra recipient', ['th-enc', 'la-enc', 'cn-enc']],
    ['missing recipient', ['th-enc']],
    ['revoked key', ['th-old', 'la-enc']],
    ['two entries for one agency', ['th-enc', 'la-enc', 'la-enc-2']],
    ['signing key', ['th-enc', 'vn-sig']],
    ['unknown kid', ['th-enc', 'la-enc', 'nobody']],
  ] as const)
    t.throws(() => checkSealedFor(recipients, kids, registry, now), coded('recipients-mismatch'), what);
});

t.test('the mode: e2e envelopes only to e2e operations, and the other way round, after membership', async (t) => {
  const header = (operation: string) =>
    ({
      ...sampleNotice('seizure-report'),
      operation,
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['th-customs'],
      tlp: 'RED',
    }) as unknown as NoticeHeader;
  t.same(evaluatePolicy(header('sealed'), 'vn-customs', registry, now, { endToEnd: true }).recipients, ['th-customs']);
  t.throws(() => evaluatePolicy(header('sealed'), 'vn-customs', registry, now), coded('operation-end-to-end'));
  t.throws(
    () => evaluatePolicy(header('open'), 'vn-customs', registry, now, { endToEnd: true }),
    coded('operation-not-end-to-end'),
  );
  // A non-member learns nothing about the mode.
  t.throws(
    () => evaluatePolicy(header('nope'), 'vn-customs', registry, now, { endToEnd: true }),
    coded('policy-denied'),
  );
});

t.test('the routing header schema: strict, binds a hash, withdrawals by supersedes only', async (t) => {
  const validate = createRoutingHeaderValidator();
  const n = sampleNotice('seizure-report');
  const h = {
    id: n.id,
    operation: 'sealed',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
    type: 'seizure-report',
    schema_version: '1.0',
    created_at: n.created_at,
    body_sha256: 'a'.repeat(64),
  };
  t.same(validate(h), { ok: true });
  const paths = (v: unknown) => {
    const r = validate(v);
    return r.ok ? [] : r.errors.map((e) => e.path);
  };
  t.same(paths({ ...h, summary: 'content' }), ['/summary'], 'no content fields');
  t.same(paths({ ...h, body_sha256: 'A'.repeat(64) }), ['/body_sha256']);
  // A withdrawal names the notice it supersedes, and nothing else of its body; other types name none.
  const w = { ...h, type: 'withdrawal', supersedes: n.id };
  t.same(validate(w), { ok: true }, 'a withdrawal with supersedes');
  t.same(paths({ ...h, type: 'withdrawal' }), ['/supersedes'], 'a withdrawal without supersedes');
  t.same(paths({ ...h, supersedes: n.id }), ['/supersedes'], 'supersedes on another type');
  t.ok(paths({ ...w, supersedes: 'not-a-uuid' }).includes('/supersedes'), 'supersedes is a notice id');
  t.same(paths({ ...w, reason: 'content' }), ['/reason'], "a withdrawal's reason stays sealed");
  t.same(paths({ ...h, schema_version: '9.9' }), ['/schema_version']);
  t.same(paths({ ...h, expires_at: '2000-01-01T00:00:00Z' }), ['/expires_at']);
  const { body_sha256: _drop, ...noHash } = h;
  t.same(paths(noHash), ['/body_sha256']);
});

const withdrawalOf = (supersedes: string, operation = 'sealed') =>
  buildWithdrawal({
    id: '0b6b3c3e-5f0d-4c47-9a55-7d1f1d0e0a01',
    supersedes,
    origin: { agency: 'vn-customs', country: 'VN' },
    operation,
    tlp: 'AMBER',
    recipients: ['th-customs'],
    reason: 'wrong container',
    correction: 'container MSCU 1234567',
    language: 'en',
    priority: 'high',
    now,
  });

t.test("a withdrawal's routing header: supersedes, no reason; the recipient checks the body agrees", async (t) => {
  const n = sampleNotice('seizure-report');
  const w = withdrawalOf(n.id);
  const h = routingHeaderOf(w, 'a'.repeat(64));
  t.equal(h.supersedes, n.id, 'the header names the superseded notice');
  t.notOk(JSON.stringify(h).includes('container'), 'neither reason nor correction is in the header');
  t.same(createRoutingHeaderValidator()(h), { ok: true }, 'and it is schema-valid');
  t.equal(routingHeaderOf(n, 'a'.repeat(64)).supersedes, undefined, 'another type names none');
  checkSupersedes(w, h);
  checkSupersedes(n, routingHeaderOf(n, 'a'.repeat(64)));
  const other = sampleNotice('seizure-report').id;
  const mismatch = (notice: Record<string, unknown>, header: typeof h, what: string) =>
    throwsWith(t, () => checkSupersedes(notice, header), DeliveryVerificationError, 'routing-header-mismatch', {
      what,
    });
  mismatch(w, { ...h, supersedes: other }, 'header names another notice');
  mismatch(w, { ...h, supersedes: undefined }, 'header names none');
  mismatch({ ...w, references: [other] }, h, 'references leave it out');
  mismatch({ ...w, references: undefined }, h, 'no references');
  mismatch(n, { ...routingHeaderOf(n, 'a'.repeat(64)), supersedes: n.id }, 'a non-withdrawal header naming one');
});

t.test('ingest: an e2e withdrawal is routed by the header supersedes, and only in e2e operations', async (t) => {
  const original = sampleNotice('seizure-report');
  const entry: NoticeLogEntry = {
    v: 1,
    kind: 'notice',
    notice_id: original.id,
    sha256: 'a'.repeat(64),
    format: 'jose-e2e',
    signer_kid: 'vn-sig',
    origin: { country: 'VN', agency: 'vn-customs' },
    operation: 'sealed',
    type: 'seizure-report',
    tlp: 'AMBER',
    received_at: now.toISOString(),
    recipients: ['th-customs'],
  };
  const lookup = {
    find: async (id: string) => (id === original.id ? entry : undefined),
    delivered: async () => ['th-customs'],
  };
  const w = withdrawalOf(original.id);
  const header = routingHeaderOf(w, 'a'.repeat(64));
  t.equal(supersededId(header), original.id);
  throwsWith(t, () => supersededId({ ...header, supersedes: undefined }), LiaisonError, 'schema-invalid');
  t.same(await evaluateWithdrawalPolicy(header, 'vn-customs', registry, now, lookup, { endToEnd: true }), {
    recipients: ['th-customs'],
  });
  // The header's supersedes is what the rules apply to: another id is refused as any unknown notice.
  await t.rejects(
    evaluateWithdrawalPolicy(
      { ...header, supersedes: sampleNotice('seizure-report').id },
      'vn-customs',
      registry,
      now,
      lookup,
      {
        endToEnd: true,
      },
    ),
    coded('policy-denied'),
  );
  // Hub-readable in an e2e operation: refused, after membership (a non-member learns nothing about the mode).
  await t.rejects(
    evaluateWithdrawalPolicy(w as never, 'vn-customs', registry, now, lookup),
    coded('operation-end-to-end'),
  );
  await t.rejects(
    evaluateWithdrawalPolicy(withdrawalOf(original.id, 'nope') as never, 'vn-customs', registry, now, lookup),
    coded('policy-denied'),
  );
  await t.rejects(
    evaluateWithdrawalPolicy(
      routingHeaderOf(withdrawalOf(original.id, 'open'), 'a'.repeat(64)),
      'vn-customs',
      registry,
      now,
      lookup,
      {
        endToEnd: true,
      },
    ),
    coded('operation-not-end-to-end'),
  );
});

t.test('the wire parser: envelope and JWE General JSON, strictly', async (t) => {
  const n = sampleNotice('seizure-report', { origin: { country: 'VN', agency: 'vn-customs' } });
  const two = await sealEndToEnd(n, sig.privateJwk, [{ key: keys.th }, { key: keys.la }]);
  const one = await sealEndToEnd(n, sig.privateJwk, [{ key: keys.th }]);
  t.same(parseE2eEnvelope(two.envelope, 1e6), JSON.parse(two.envelope));
  t.same(
    parseE2eBody(two.body, 1e6).recipients.map((r) => r.kid),
    ['th-enc', 'la-enc'],
  );
  t.same(
    parseE2eBody(one.body, 1e6).recipients.map((r) => r.kid),
    ['th-enc'],
    'one recipient: epk in the protected header',
  );
  const body = JSON.parse(two.body) as Record<string, any>;
  const bad = (what: string, v: unknown, code: string) =>
    throwsWith(t, () => parseE2eBody(JSON.stringify(v), 1e6), LiaisonError, code as 'envelope-malformed', { what });
  bad('flattened', { ...body, recipients: undefined, ...body.recipients[0] }, 'envelope-malformed');
  bad('aad', { ...body, aad: 'eA' }, 'header-forbidden');
  bad('no recipients', { ...body, recipients: [] }, 'envelope-malformed');
  bad('short iv', { ...body, iv: 'AAAA' }, 'envelope-malformed');
  const r0 = body.recipients[0];
  bad('alg ECDH-ES', { ...body, recipients: [{ ...r0, header: { ...r0.header, alg: 'ECDH-ES' } }] }, 'alg-not-allowed');
  bad('duplicate kid', { ...body, recipients: [r0, r0] }, 'recipients-mismatch');
  bad('x5u', { ...body, recipients: [{ ...r0, header: { ...r0.header, x5u: 'https://x' } }] }, 'header-forbidden');
  bad(
    'epk with d',
    { ...body, recipients: [{ ...r0, header: { ...r0.header, epk: { ...r0.header.epk, d: 'AA' } } }] },
    'header-forbidden',
  );
  const prot = (p: unknown) => ({ ...body, protected: Buffer.from(JSON.stringify(p)).toString('base64url') });
  bad('enc A128GCM', prot({ enc: 'A128GCM', cty: 'liaison-notice+jws' }), 'alg-not-allowed');
  bad('zip', prot({ enc: 'A256GCM', cty: 'liaison-notice+jws', zip: 'DEF' }), 'header-forbidden');
  bad('not JSON', 'nope', 'envelope-malformed');
  for (const env of [
    '[]',
    '{"header":"a"}',
    '{"header":"a","body":1}',
    '{"header":"a","body":"b","x":"c"}',
    '{"header":"a","header":"a"}',
  ])
    throwsWith(t, () => parseE2eEnvelope(env, 1e6), LiaisonError, 'envelope-malformed', { what: env });
});

t.test('recipientKeys expands addressees as the gateway does', async (t) => {
  const directory: OperationDirectory = {
    operation: 'sealed',
    end_to_end: true,
    members: [
      { agency: 'vn-customs', country: 'VN', receives: true, encryption_keys: [await encKey('vn-enc')] },
      { agency: 'th-customs', country: 'TH', receives: true, encryption_keys: [keys.th] },
      { agency: 'la-customs', country: 'LA', receives: true, encryption_keys: [keys.la] },
      { agency: 'cn-customs', country: 'CN', receives: false, encryption_keys: [] },
    ],
  };
  const of = (addressees: string[]) =>
    recipientKeys({ origin: { agency: 'vn-customs' }, addressees }, directory).map((r) => r.agency);
  t.same(of(['*']), ['la-customs', 'th-customs'], 'not the origin, not a member that does not receive');
  t.same(of(['TH']), ['th-customs']);
  t.same(of(['la-customs', 'TH']), ['la-customs', 'th-customs']);
  t.throws(() => of(['CN']), /no receiving member/);
});
