/**
 * Entry signatures (broker/log/entry-signature.ts) and how `audit verify`
 * (broker/audit/verify.ts) reads them: no other broker JWS passes as one, and
 * unsigned entries are accepted only as the leading prefix under a valid
 * checkpoint (logs written before entry signatures); any other is forged.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { auditLog, type AuditEntry } from '../broker/audit/verify.js';
import { receiptClaims, signReceipt } from '../broker/ingest/notice-receipt.js';
import { BrokerKeyring, generateBrokerKeyFile } from '../broker/keys/broker-keys.js';
import { signCheckpoint } from '../broker/log/checkpoint.js';
import { CompactRange } from '../broker/log/compact-range.js';
import { encodeEntry, type NoticeLogEntry } from '../broker/log/entry.js';
import { EntrySignatureVerifier, signEntry } from '../broker/log/entry-signature.js';
import { leafHash } from '../broker/log/merkle.js';

const keyring = await BrokerKeyring.fromFile('liaison-hub', await generateBrokerKeyFile());
const other = await BrokerKeyring.fromFile('liaison-hub', await generateBrokerKeyFile());
const keys = keyring.verificationKeys;

const entry = (): NoticeLogEntry => ({
  v: 1,
  kind: 'notice',
  notice_id: randomUUID(),
  sha256: 'cd'.repeat(32),
  format: 'jose',
  signer_kid: 'vn-customs-sig-1',
  origin: { country: 'VN', agency: 'vn-customs' },
  operation: 'mekong-dragon-6',
  type: 'seizure-report',
  tlp: 'AMBER',
  received_at: new Date().toISOString(),
  recipients: ['th-customs'],
});

t.test(
  'an entry signature verifies over its bytes only, with a known broker key, and only with its own typ',
  async (t) => {
    const v = new EntrySignatureVerifier(keys);
    const e = entry();
    const bytes = encodeEntry(e);
    const sig = signEntry(keyring.signing, bytes);
    t.equal(v.verify(bytes, sig), keyring.signing.kid);
    t.throws(
      () => v.verify(encodeEntry({ ...e, tlp: 'RED' }), sig),
      { code: 'entry-signature-invalid' },
      'other bytes',
    );
    t.throws(() => v.verify(bytes, undefined), { code: 'entry-unsigned' });
    t.throws(
      () => v.verify(bytes, signEntry(other.signing, bytes)),
      { code: 'entry-signature-invalid', unknownKid: true },
      'a key the broker never had',
    );
    // A receipt is a valid broker JWS over its payload: detached, it is a signature over those bytes, but not an entry signature.
    const receipt = await signReceipt(keyring.signing, receiptClaims('liaison-hub', e, 0));
    const [h, p, s] = receipt.split('.');
    t.throws(
      () => v.verify(Buffer.from(p!, 'base64url'), `${h}..${s}`),
      { code: 'entry-signature-invalid', message: /typ/ },
      'a receipt does not pass as an entry signature',
    );
    t.throws(
      () => v.verify(bytes, sig.replace('..', '.x.')),
      { code: 'entry-signature-invalid' },
      'an attached payload is not accepted',
    );
  },
);

/** Entries and a checkpoint at `cpSize`, signed by the broker key; `contents`: whether the evidence says it holds the notices (none of them). */
async function evidence(signed: boolean[], cpSize: number, contents = false) {
  const entries: AuditEntry[] = signed.map((s, index) => {
    const bytes = encodeEntry(entry());
    return { index, bytes, ...(s ? { signature: signEntry(keyring.signing, bytes) } : {}) };
  });
  const range = CompactRange.empty();
  for (const e of entries.slice(0, cpSize)) range.append(leafHash(e.bytes));
  const note = await signCheckpoint(
    { origin: 'liaison-hub', treeSize: cpSize, rootHash: range.root(), timestamp: Date.now() },
    keyring.signing.privateKey,
    keyring.signing.publicJwk,
  );
  return auditLog({
    origin: 'liaison-hub',
    brokerKeys: keys,
    entries,
    entrySignatures: true,
    checkpoints: [{ note }],
    ...(contents ? { notices: [] } : {}),
  });
}

t.test('unsigned entries: accepted only as the leading prefix under a checkpoint', async (t) => {
  const legacy = await evidence([false, false, true, true], 4);
  t.ok(legacy.ok, JSON.stringify(legacy.problems));
  t.equal(legacy.entriesUnsignedLegacy, 2);
  t.equal(legacy.entriesSigned, 2);

  const after = await evidence([false, true, false, true], 4);
  t.same(
    after.problems.map((p) => [p.code, p.index]),
    [['entry-unsigned', 2]],
    'unsigned after a signed entry: forged',
  );
  const noContents = await evidence([false, true, false, true], 4, true);
  t.equal(noContents.noticesErased, 3, 'the forged commitment is not counted as an erased notice');
  t.same(
    noContents.problems.map((p) => [p.code, p.index]),
    [
      ['entry-unsigned', 2],
      ['notice-content-missing', 0],
      ['notice-content-missing', 1],
      ['notice-content-missing', 3],
    ],
    'nor as a missing one: the genuine ones are, their contents gone with no erasure event',
  );

  const beyond = await evidence([false, false, true, false], 3);
  t.same(
    beyond.problems.map((p) => [p.code, p.index]),
    [['entry-unsigned', 3]],
    'unsigned beyond the checkpoint, after signed ones',
  );

  const fresh = await evidence([false], 0);
  t.same(
    fresh.problems.map((p) => [p.code, p.index]),
    [['entry-unsigned', 0]],
    'a leading unsigned entry no checkpoint covers: forged',
  );
});
