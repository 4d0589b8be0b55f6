import t from 'tap';
import { webcrypto } from 'node:crypto';
import { checkEntrySignature } from '../broker/audit/entry-signature-check.js';
import { checkEntrySignatures } from '../broker/audit/entry-signature-pool.js';
import { auditLogOnAllCores } from '../broker/audit/verify-all-cores.js';
import { auditLog, type AuditInput } from '../broker/audit/verify.js';
import { signCheckpoint, type PublicSigningJwk } from '../broker/log/checkpoint.js';
import { CompactRange } from '../broker/log/compact-range.js';
import { encodeEntry } from '../broker/log/entry.js';
import { EntrySignatureVerifier, signEntry } from '../broker/log/entry-signature.js';
import { leafHash } from '../broker/log/merkle.js';

const ORIGIN = 'liaison.test.example';
const N = 5000;
const FORGED = 2777;
const UNSIGNED = 4100;

const pair = (await webcrypto.subtle.generateKey('Ed25519', true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
const x = ((await webcrypto.subtle.exportKey('jwk', pair.publicKey)) as { x: string }).x;
const publicJwk: PublicSigningJwk = { kty: 'OKP', crv: 'Ed25519', x, kid: 'sig-1' };
const key = { kid: 'sig-1', alg: 'EdDSA' as const, privateKey: pair.privateKey, publicJwk };

/** N signed ack entries under one checkpoint; the signature of FORGED is another entry's, UNSIGNED has none. */
async function largeLog(): Promise<AuditInput> {
  const range = CompactRange.empty();
  const entries: AuditInput['entries'][number][] = [];
  for (let i = 0; i < N; i++) {
    const bytes = encodeEntry({
      v: 1,
      kind: 'ack',
      notice_id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
      agency: 'th-customs',
      sha256: 'ab'.repeat(32),
      signer_kid: 'th-customs-sig-1',
      acked_at: new Date(1_800_000_000_000 + i).toISOString(),
    } as unknown as Parameters<typeof encodeEntry>[0]);
    entries.push({ index: i, bytes, signature: signEntry(key, bytes) });
    range.append(leafHash(bytes));
  }
  entries[FORGED] = { ...entries[FORGED]!, signature: entries[FORGED - 1]!.signature };
  entries[UNSIGNED] = { index: UNSIGNED, bytes: entries[UNSIGNED]!.bytes };
  const note = await signCheckpoint(
    { origin: ORIGIN, treeSize: N, rootHash: range.root(), timestamp: 1_800_000_000_000 },
    pair.privateKey,
    publicJwk,
  );
  return { origin: ORIGIN, brokerKeys: [publicJwk], entries, entrySignatures: true, checkpoints: [{ note }] };
}

const input = await largeLog();

t.test('checked on all cores, every outcome is the one checked in turn, at its index', async (t) => {
  const verifier = new EntrySignatureVerifier(input.brokerKeys);
  const inTurn = input.entries.map((e) => checkEntrySignature(verifier, e.bytes, e.signature));
  const runs = [
    { threads: 1, shareThisThread: true },
    { threads: 2, shareThisThread: true },
    // Workers only: each chunk checked in a worker thread.
    { threads: 2, shareThisThread: false },
    { threads: 3, shareThisThread: false },
  ];
  for (const run of runs) {
    const outcomes = await checkEntrySignatures(input.brokerKeys, input.entries, { ...run, chunk: 256 });
    t.same(outcomes, inTurn, JSON.stringify(run));
    t.match(outcomes[FORGED], { ok: false, code: 'entry-signature-invalid' });
    t.match(outcomes[UNSIGNED], { ok: false, code: 'entry-unsigned' });
    t.equal(outcomes.filter((o) => !o.ok).length, 2);
  }
});

t.test('a forged signature in the middle of a large log is reported at its index', async (t) => {
  const serial = auditLog(input);
  const parallel = await auditLogOnAllCores(input, undefined, { threads: 2, chunk: 256, shareThisThread: false });
  t.same(parallel, serial, 'the same report as the audit in one thread');
  t.notOk(parallel.ok);
  t.same(
    parallel.problems.map((p) => [p.code, p.index]),
    [
      ['entry-signature-invalid', FORGED],
      ['entry-unsigned', UNSIGNED],
    ],
  );
  t.equal(parallel.firstBadEntry, FORGED);
  t.equal(parallel.entriesSigned, N - 2);
  t.equal(parallel.verifiedTreeSize, N, 'the entries themselves match the checkpoint');
});

t.test('a chunk no worker can take is checked in this thread', async (t) => {
  // A key object with a method cannot be posted to a worker: every chunk comes back here.
  const keys = [{ ...publicJwk, toString: () => 'sig-1' }];
  const outcomes = await checkEntrySignatures(keys, input.entries, { threads: 2, shareThisThread: false, chunk: 512 });
  t.equal(outcomes.length, N);
  t.equal(outcomes.filter((o) => o?.ok).length, N - 2, 'every entry checked');
  t.match(outcomes[FORGED], { ok: false, code: 'entry-signature-invalid' });
});

t.test('outcomes not one per entry are refused', async (t) => {
  t.throws(() => auditLog(input, undefined, { signatures: [] }), RangeError);
  t.throws(() => auditLog(input, undefined, { leaves: [] as Uint8Array[] }), RangeError);
});
