/**
 * Origin signatures against the agency key history (broker/audit/key-history.ts):
 * pure, no NATS. Keys are made here (jose for JWS, openpgp.js for OpenPGP).
 */
import t from 'tap';
import { importJWK } from 'jose';
import { createMessage, generateKey, readPrivateKey, sign } from 'openpgp';
import { signNotice } from '../broker/agency-client/seal.js';
import { ArchiveError, archiveToAuditInput } from '../broker/audit/archive.js';
import {
  auditLogWithOrigins,
  checkOriginSignatures,
  mergeKeyHistory,
  parseAgencyKeys,
  type HistoricalAgencyKey,
} from '../broker/audit/key-history.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { makeKeyPair, type KeyPairJwk } from '../broker/keys/jwk.js';
import { signCheckpoint } from '../broker/log/checkpoint.js';
import { throwsWith } from './helpers/assert-error.js';
import { CompactRange } from '../broker/log/compact-range.js';
import { encodeEntry, type NoticeLogEntry } from '../broker/log/entry.js';
import { leafHash } from '../broker/log/merkle.js';
import type { AgencyKey } from '../broker/registry/model.js';

const enc = new TextEncoder();
const T = (iso: string) => new Date(iso).toISOString();
let n = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;

const [a1, a2, b1, b2] = await Promise.all([
  makeKeyPair('Ed25519', 'vn-sig-1'),
  makeKeyPair('ES256', 'vn-sig-2'),
  makeKeyPair('Ed25519', 'th-sig-1'),
  makeKeyPair('ES256', 'th-sig-2'),
]);
const jkey = (agency: string, k: KeyPairJwk, patch: Partial<AgencyKey> = {}): HistoricalAgencyKey => ({
  agency,
  kid: k.kid,
  use: 'sig',
  format: 'jose',
  jwk: k.publicJwk as HistoricalAgencyKey['jwk'],
  status: 'active',
  ...patch,
});

// vn rotated on 2024-03-01: vn-sig-1 revoked then, vn-sig-2 valid from then.
const history: HistoricalAgencyKey[] = [
  jkey('vn', a1, { status: 'revoked', revoked_at: T('2024-03-01T00:00:00Z') }),
  jkey('vn', a2, { not_before: T('2024-03-01T00:00:00Z') }),
  jkey('th', b1),
  jkey('th', b2),
];

interface Case {
  entry: NoticeLogEntry;
  signed: Uint8Array;
}
async function notice(o: {
  agency?: string;
  kid: string;
  key: KeyPairJwk;
  at: string;
  header?: Record<string, unknown>;
  format?: 'jose' | 'openpgp';
}): Promise<Case> {
  const id = uuid();
  const jws = await signNotice(enc.encode(JSON.stringify({ id })), { ...o.key.privateJwk }, o.header);
  const signed = enc.encode(jws);
  const entry: NoticeLogEntry = {
    v: 1,
    kind: 'notice',
    notice_id: id,
    sha256: sha256Hex(signed),
    format: o.format ?? 'jose',
    signer_kid: o.kid,
    origin: { country: 'VN', agency: o.agency ?? 'vn' },
    operation: 'op',
    type: 'seizure-report',
    tlp: 'AMBER',
    received_at: T(o.at),
    recipients: ['th'],
  };
  return { entry, signed };
}
const check = (cases: Case[], keys = history) =>
  checkOriginSignatures({
    entries: cases.map((c, index) => ({ index, bytes: encodeEntry(c.entry) })),
    notices: cases.map((c) => ({ noticeId: c.entry.notice_id, signed: c.signed })),
    agencyKeys: keys,
  });

t.test('mergeKeyHistory: the union of every revision, each key with its newest status', async (t) => {
  const rev1 = { id: 'vn', keys: [{ kid: 'vn-sig-1', use: 'sig', jwk: a1.publicJwk, status: 'active' }] };
  const rev2 = {
    id: 'vn',
    keys: [
      { kid: 'vn-sig-1', use: 'sig', jwk: a1.publicJwk, status: 'revoked', revoked_at: '2024-03-01T00:00:00.000Z' },
      { kid: 'vn-sig-2', use: 'sig', jwk: a2.publicJwk, status: 'active' },
    ],
  };
  const rev3 = { id: 'vn', keys: [{ kid: 'vn-sig-2', use: 'sig', jwk: a2.publicJwk, status: 'active' }] }; // vn-sig-1 dropped from the record
  const th = {
    id: 'th',
    keys: [{ kid: 'th-sig-1', use: 'sig', jwk: b1.publicJwk, status: 'active' }],
    openpgp_keys: [{ kid: 'ABCD', use: 'sig', format: 'openpgp', armored: '---', status: 'active' }],
  };
  const merged = mergeKeyHistory([
    { agencyId: 'vn', record: rev1 },
    { agencyId: 'th', record: th },
    { agencyId: 'vn', record: rev2 },
    { agencyId: 'vn', record: rev3 },
    { agencyId: 'xx', record: { id: 'other' } }, // id does not match the key: skipped
    { agencyId: 'yy', record: 'not json object' },
  ]);
  t.same(merged.map((k) => `${k.agency}/${k.kid}/${k.format}/${k.status}`).sort(), [
    'th/ABCD/openpgp/active',
    'th/th-sig-1/jose/active',
    'vn/vn-sig-1/jose/revoked',
    'vn/vn-sig-2/jose/active',
  ]);
  t.equal(
    merged.find((k) => k.kid === 'vn-sig-1')!.revoked_at,
    '2024-03-01T00:00:00.000Z',
    'a key dropped later keeps its last known status',
  );
  t.notOk('d' in merged.find((k) => k.kid === 'vn-sig-1')!.jwk!, 'public fields only');
  // The same kid with other key material is kept apart (and so names no key).
  const swapped = mergeKeyHistory([
    { agencyId: 'vn', record: rev1 },
    {
      agencyId: 'vn',
      record: { id: 'vn', keys: [{ kid: 'vn-sig-1', use: 'sig', jwk: b1.publicJwk, status: 'active' }] },
    },
  ]);
  t.equal(swapped.length, 2);
  // Round trip through the archive's parser; garbage is refused.
  t.same(
    parseAgencyKeys(JSON.parse(JSON.stringify(merged)), (m) => new Error(m)),
    merged,
  );
  t.throws(
    () => parseAgencyKeys({}, (m) => new Error(m)),
    { message: 'agency_keys must be an array' },
    'the error is made by `fail`',
  );
  t.throws(
    () =>
      parseAgencyKeys([{ agency: 'vn', format: 'jose', kid: 'k', use: 'sig', status: 'active' }], (m) => new Error(m)),
    /not a key record/,
  );
  t.throws(() => parseAgencyKeys([{ kid: 'k' }], (m) => new Error(m)), {
    message: 'agency_keys[0] must name an agency and a format',
  });
});

t.test('a key rotated or revoked later still verifies what it signed while valid', async (t) => {
  const before = await notice({ kid: 'vn-sig-1', key: a1, at: '2024-02-28T23:59:59Z' });
  const after = await notice({ kid: 'vn-sig-2', key: a2, at: '2024-03-01T00:00:01Z' });
  const th = await notice({ agency: 'th', kid: 'th-sig-1', key: b1, at: '2024-03-02T00:00:00Z' });
  const r = await check([before, after, th]);
  t.same(r.problems, []);
  t.equal(r.checked, 3);
  t.equal(r.notChecked, 0);
});

t.test('each bad origin signature is reported naming its entry', async (t) => {
  const good = await notice({ kid: 'vn-sig-2', key: a2, at: '2024-04-01T00:00:00Z' });
  const revoked = await notice({ kid: 'vn-sig-1', key: a1, at: '2024-03-01T00:00:00Z' }); // revoked at exactly that instant
  const early = await notice({ kid: 'vn-sig-2', key: a2, at: '2024-02-01T00:00:00Z' }); // before not_before
  const otherAgencyKid = await notice({ kid: 'vn-sig-2', key: b1, at: '2024-04-01T00:00:00Z' }); // th signs, JWS names th-sig-1, entry names vn-sig-2
  const forgedKid = await notice({
    kid: 'vn-sig-2',
    key: { ...b2, privateJwk: { ...b2.privateJwk, kid: 'vn-sig-2' } },
    at: '2024-04-01T00:00:00Z',
  }); // th's ES256 key, header claims vn-sig-2
  const wrongAgency = await notice({ kid: 'th-sig-1', key: b1, at: '2024-04-01T00:00:00Z' }); // origin vn, key of th
  const unknown = await notice({ kid: 'zz-sig-9', key: a2, at: '2024-04-01T00:00:00Z' });
  const cases = [good, revoked, early, otherAgencyKid, forgedKid, wrongAgency, unknown];
  const r = await check(cases);
  t.equal(r.checked, cases.length);
  const by = (i: number) => r.problems.filter((p) => p.index === i).map((p) => p.code);
  t.same(by(0), []);
  t.same(by(1), ['notice-signer-not-valid']);
  t.match(r.problems.find((p) => p.index === 1)!.message, /vn-sig-1 was revoked at received_at/);
  t.same(by(2), ['notice-signer-not-valid']);
  t.match(r.problems.find((p) => p.index === 2)!.message, /not-yet-valid/);
  t.same(by(3), ['notice-signer-mismatch']);
  t.same(by(4), ['notice-signature-invalid'], 'a JWS claiming the right kid but signed by another key');
  t.same(by(5), ['notice-signer-wrong-agency']);
  t.same(by(6), ['notice-signer-unknown']);
  for (const p of r.problems) t.match(p.message, new RegExp(`entry ${p.index}`));

  // A kid two agencies claimed in the history names no key.
  const dup = await check([good], [...history, { ...jkey('th', b1), kid: 'vn-sig-2' }]);
  t.same(
    dup.problems.map((p) => p.code),
    ['notice-signer-unknown'],
  );
  // A held notice without an entry is not checked here (auditLog reports it).
  const orphan = await checkOriginSignatures({
    entries: [],
    notices: [{ noticeId: good.entry.notice_id, signed: good.signed }],
    agencyKeys: history,
  });
  t.same([orphan.checked, orphan.notChecked, orphan.problems.length], [0, 1, 0]);
  // An alg the key type does not allow / a JWS header ingest refuses.
  const badHeader = await notice({
    kid: 'vn-sig-2',
    key: a2,
    at: '2024-04-01T00:00:00Z',
    header: { jku: 'https://evil' },
  });
  t.same(
    (await check([badHeader])).problems.map((p) => p.code),
    ['notice-signature-invalid'],
  );
  // Not a JWS at all.
  t.same(
    (await check([{ ...good, signed: enc.encode('garbage') }])).problems.map((p) => p.code),
    ['notice-signature-invalid'],
  );
});

t.test('OpenPGP notices are verified with the adapter verifier against the history', async (t) => {
  const gen = async () => {
    const k = await generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'vn', email: 'vn@example.org' }],
      format: 'armored',
      date: new Date('2024-01-01T00:00:00Z'),
    });
    const priv = await readPrivateKey({ armoredKey: k.privateKey });
    return { priv, armored: k.publicKey, fpr: priv.getFingerprint().toUpperCase() };
  };
  const [p1, p2] = await Promise.all([gen(), gen()]);
  const pkey = (
    agency: string,
    p: { armored: string; fpr: string },
    patch: Partial<HistoricalAgencyKey> = {},
  ): HistoricalAgencyKey => ({
    agency,
    kid: p.fpr,
    use: 'sig',
    format: 'openpgp',
    armored: p.armored,
    status: 'active',
    ...patch,
  });
  const pgpNotice = async (
    p: { priv: Awaited<ReturnType<typeof gen>>['priv']; fpr: string },
    at: string,
    agency = 'vn',
  ): Promise<Case> => {
    const id = uuid();
    const armored = await sign({
      message: await createMessage({ binary: enc.encode(JSON.stringify({ id })) }),
      signingKeys: p.priv,
      date: new Date(at),
      format: 'armored',
    });
    const signed = enc.encode(armored as string);
    return {
      signed,
      entry: {
        v: 1,
        kind: 'notice',
        notice_id: id,
        sha256: sha256Hex(signed),
        format: 'openpgp',
        signer_kid: p.fpr,
        origin: { country: 'VN', agency },
        operation: 'op',
        type: 'seizure-report',
        tlp: 'AMBER',
        received_at: T(at),
        recipients: ['th'],
      },
    };
  };
  const keys = [pkey('vn', p1, { status: 'revoked', revoked_at: T('2024-03-01T00:00:00Z') }), pkey('th', p2)];
  const ok = await pgpNotice(p1, '2024-02-01T00:00:00Z');
  const late = await pgpNotice(p1, '2024-03-02T00:00:00Z');
  const wrongAgency = await pgpNotice(p2, '2024-03-02T00:00:00Z');
  const otherSigner = await pgpNotice(p2, '2024-02-01T00:00:00Z'); // th's message under an entry naming vn's key
  otherSigner.entry.signer_kid = p1.fpr;
  const r = await check([ok, late, wrongAgency, otherSigner], keys);
  t.equal(r.checked, 4);
  const by = (i: number) => r.problems.filter((p) => p.index === i).map((p) => p.code);
  t.same(by(0), [], 'signed while valid, revoked later: verifies');
  t.same(by(1), ['notice-signer-not-valid'], JSON.stringify(r.problems));
  t.same(by(2), ['notice-signer-wrong-agency']);
  t.same(by(3), ['notice-signer-mismatch']);
});

t.test(
  'auditLogWithOrigins folds the signature checks into the report; format 1 archives are still read',
  async (t) => {
    const cases = [
      await notice({ kid: 'vn-sig-2', key: a2, at: '2024-04-01T00:00:00Z' }),
      await notice({ kid: 'vn-sig-1', key: a1, at: '2024-04-01T00:00:00Z' }),
    ];
    const bytes = cases.map((c) => encodeEntry(c.entry));
    const range = CompactRange.empty();
    for (const b of bytes) range.append(leafHash(b));
    const broker = await makeKeyPair('Ed25519', 'hub-sig-1');
    const priv = (await importJWK(broker.privateJwk, 'EdDSA')) as Parameters<typeof signCheckpoint>[1];
    const note = await signCheckpoint(
      { origin: 'hub', treeSize: 2, rootHash: range.root(), timestamp: 1 },
      priv,
      broker.publicJwk,
    );
    const archive = {
      format: 'liaison-audit-archive/1',
      origin: 'hub',
      exported_at: new Date().toISOString(),
      broker_keys: [broker.publicJwk],
      entries: bytes.map((b, index) => ({ index, entry: Buffer.from(b).toString('base64url') })),
      checkpoints: [{ note, consistency_from_previous: [] }],
      notices: cases.map((c) => ({
        notice_id: c.entry.notice_id,
        signed: Buffer.from(c.signed).toString('base64url'),
      })),
    };
    const v1 = await auditLogWithOrigins(archiveToAuditInput(archive));
    t.ok(v1.ok, 'format 1: no key history, the log verifies');
    t.same([v1.signaturesChecked, v1.signaturesNotChecked], [0, 2], 'signatures counted as not checked');
    const v2 = await auditLogWithOrigins(
      archiveToAuditInput({ ...archive, format: 'liaison-audit-archive/2', agency_keys: history }),
    );
    t.notOk(v2.ok);
    t.equal(v2.signaturesChecked, 2);
    t.equal(v2.firstBadEntry, 1);
    t.same(
      v2.problems.map((p) => [p.code, p.index]),
      [['notice-signer-not-valid', 1]],
    );
    throwsWith(
      t,
      () => archiveToAuditInput({ ...archive, format: 'liaison-audit-archive/5' }),
      ArchiveError,
      'archive-invalid',
      { message: /not a liaison-audit-archive\/1 or/ },
    );
    throwsWith(
      t,
      () => archiveToAuditInput({ ...archive, format: 'liaison-audit-archive/2', agency_keys: [{ agency: 'vn' }] }),
      ArchiveError,
      'archive-invalid',
      { message: /agency_keys\[0\]/ },
    );
  },
);
