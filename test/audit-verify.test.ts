import t from 'tap';
import { waitFor } from './helpers/wait.js';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { ArchiveError, archiveToAuditInput, type AuditArchive } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLog } from '../broker/audit/verify.js';
import { throwsWith } from './helpers/assert-error.js';
import { run } from '../broker/cli/liaison.js';
import { parseCheckpoint, signCheckpoint } from '../broker/log/checkpoint.js';
import { STREAMS } from '../broker/nats/streams.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  checkpointEveryEntries: 4,
  checkpointIntervalMs: 300,
  leaseTtlSeconds: 2,
});
const brokerId = g.config.brokerId;
const sigKeys = g.jwks.keys.filter((k) => k.use === 'sig');

const ids: string[] = [];
for (let i = 0; i < 12; i++) {
  const n = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });
  const res = await g.post((await g.seal(n, 'vn-customs')).jwe);
  if (res.status !== 202) throw new Error(JSON.stringify(res.json));
  ids.push(n.id);
}
await waitFor(async () => (g.gw.checkpointer!.status.checkpointSize === 12 ? true : undefined), 'checkpoint 12');
const archive = await exportArchive(g.gw.bus, brokerId, sigKeys, g.gw.keyring);
const copy = (): AuditArchive => JSON.parse(JSON.stringify(archive)) as AuditArchive;
const audit = (a: AuditArchive) => auditLog(archiveToAuditInput(a));
const codes = (a: AuditArchive) => audit(a).problems.map((p) => p.code);
const entryJson = (a: AuditArchive, i: number) =>
  JSON.parse(Buffer.from(a.entries[i]!.entry, 'base64url').toString('utf8'));
/** The log index of the entry committing to notice `id`. */
const entryIndexOf = (a: AuditArchive, id: string) =>
  a.entries.findIndex((_, i) => (entryJson(a, i) as { notice_id?: string }).notice_id === id);
const sizes = archive.checkpoints.map((c) => parseCheckpoint(c.note).checkpoint.treeSize);

t.test('the exported archive of a real log verifies', async (t) => {
  const r = audit(archive);
  t.same(r.problems, []);
  t.ok(r.ok);
  t.equal(r.entries, 12);
  t.equal(r.verifiedTreeSize, 12);
  t.equal(r.noticesChecked, 12);
  t.equal(r.noticesErased, 0);
  t.equal(r.noticesNotFetched, undefined, 'contents were in the evidence');
  t.equal(r.checkpointsValid, archive.checkpoints.length);
  // The same log with no contents at all (as API mode has it): not fetched, not erased.
  const { notices: _none, ...commitmentsOnly } = archiveToAuditInput(archive);
  const bare = auditLog(commitmentsOnly);
  t.ok(bare.ok);
  t.same([bare.noticesChecked, bare.noticesErased, bare.noticesNotFetched], [0, 0, 12]);

  const dir = mkdtempSync(join(tmpdir(), 'liaison-audit-'));
  const file = join(dir, 'archive.json');
  writeFileSync(file, JSON.stringify(archive));
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  t.equal(await run(['audit', 'verify', '--archive', file], io), 0);
  t.match(out, /12 replayed/);
  t.match(out, /the log verifies/);

  const bad = copy();
  const e = entryJson(bad, 7);
  e.tlp = 'RED';
  bad.entries[7]!.entry = Buffer.from(JSON.stringify(e, Object.keys(e).sort())).toString('base64url');
  writeFileSync(file, JSON.stringify(bad));
  out = '';
  t.equal(await run(['audit', 'verify', '--archive', file], io), 1, 'non-zero exit');
  t.match(out, /first bad entry: 7/);
  t.match(out, /does NOT verify/);
});

t.test('one byte changed in an entry is named', async (t) => {
  const a = copy();
  const bytes = Buffer.from(a.entries[5]!.entry, 'base64url');
  const at = bytes.indexOf('"sha256":"') + 10;
  bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30; // one hex digit of the commitment
  a.entries[5]!.entry = bytes.toString('base64url');
  const r = audit(a);
  t.notOk(r.ok);
  t.equal(r.firstBadEntry, 5);
  t.ok(r.problems.some((p) => p.code === 'entry-changed' && p.index === 5));
  t.ok(r.problems.some((p) => p.code === 'checkpoint-root-mismatch'));
  t.ok(
    r.problems.some((p) => p.code === 'notice-commitment-mismatch' && p.index === 5),
    'the held notice no longer matches the changed commitment',
  );
  // Without the leaf hashes the range is still named.
  delete a.leaf_hashes;
  const r2 = audit(a);
  const range = r2.problems.find((p) => p.code === 'entries-do-not-match');
  t.ok(range && range.index! <= 5, `named as a range: ${range?.message}`);
  // A byte that breaks the canonical encoding is named directly.
  const b = copy();
  b.entries[2]!.entry = Buffer.from(
    Buffer.from(b.entries[2]!.entry, 'base64url').toString('utf8').replace('{', '{ '),
  ).toString('base64url');
  t.equal(audit(b).firstBadEntry, 2);
  t.ok(codes(b).includes('entry-malformed'));
});

t.test('an entry dropped is named', async (t) => {
  const a = copy();
  a.entries.splice(6, 1);
  const r = audit(a);
  t.notOk(r.ok);
  t.equal(r.firstBadEntry, 6);
  t.ok(r.problems.some((p) => p.code === 'entry-missing' && p.index === 6));
  // Dropped and renumbered to hide the gap: the leaf hashes name it.
  const b = copy();
  b.entries.splice(6, 1);
  b.entries.forEach((e, i) => (e.index = i));
  const r2 = audit(b);
  t.equal(r2.firstBadEntry, 6);
  t.ok(codes(b).includes('checkpoint-beyond-log'), 'the newest checkpoint covers more entries than given');
  // The last entry dropped.
  const c = copy();
  c.entries.pop();
  t.ok(audit(c).problems.some((p) => p.code === 'checkpoint-beyond-log' && p.index === 11));
});

t.test('two entries swapped are named', async (t) => {
  const a = copy();
  [a.entries[3]!.entry, a.entries[4]!.entry] = [a.entries[4]!.entry, a.entries[3]!.entry];
  const r = audit(a);
  t.notOk(r.ok);
  t.equal(r.firstBadEntry, 3);
  // Swapped with their indices: out of order.
  const b = copy();
  [b.entries[3], b.entries[4]] = [b.entries[4]!, b.entries[3]!];
  t.equal(audit(b).firstBadEntry, 3);
  t.ok(codes(b).includes('entry-out-of-order'));
});

t.test('a forged checkpoint is named', async (t) => {
  const a = copy();
  const last = a.checkpoints.length - 1;
  const note = a.checkpoints[last]!.note;
  const lines = note.split('\n');
  lines[2] = Buffer.alloc(32, 9).toString('base64');
  a.checkpoints[last]!.note = lines.join('\n');
  const r = audit(a);
  t.notOk(r.ok);
  t.ok(
    r.problems.some((p) => p.code === 'checkpoint-signature-invalid' && p.checkpoint === last),
    JSON.stringify(r.problems),
  );
  // Signed by a key that is not the broker's.
  const b = copy();
  const kp = generateKeyPairSync('ed25519');
  const jwk = kp.privateKey.export({ format: 'jwk' });
  const priv = await webcrypto.subtle.importKey('jwk', jwk as webcrypto.JsonWebKey, { name: 'Ed25519' }, false, [
    'sign',
  ]);
  b.checkpoints.push({
    note: await signCheckpoint(
      { origin: brokerId, treeSize: 12, rootHash: new Uint8Array(32), timestamp: Date.now() },
      priv,
      { kty: 'OKP', crv: 'Ed25519', x: jwk.x! },
    ),
    consistency_from_previous: [],
  });
  t.ok(
    audit(b).problems.some(
      (p) => p.code === 'checkpoint-signature-invalid' && p.checkpoint === b.checkpoints.length - 1,
    ),
  );
});

t.test('a fork and an inconsistent checkpoint, both signed by the broker key, are named', async (t) => {
  const k = g.gw.keyring.signing;
  const size = sizes.find((s) => s > 0)!;
  const a = copy();
  a.checkpoints.push({
    note: await signCheckpoint(
      { origin: brokerId, treeSize: size, rootHash: new Uint8Array(32).fill(1), timestamp: Date.now() },
      k.privateKey,
      k.publicJwk,
    ),
    consistency_from_previous: [],
  });
  const r = audit(a);
  t.notOk(r.ok);
  t.ok(
    r.problems.some((p) => p.code === 'checkpoint-fork' && p.checkpoint === a.checkpoints.length - 1),
    `fork at size ${size}`,
  );
  t.ok(
    r.problems.some((p) => p.code === 'checkpoint-rollback'),
    'and it goes back in size',
  );

  const missing = [...Array(12).keys()].find((s) => s > size && !sizes.includes(s))!;
  const b = copy();
  const pos = sizes.findIndex((s) => s > missing);
  b.checkpoints.splice(pos, 0, {
    note: await signCheckpoint(
      { origin: brokerId, treeSize: missing, rootHash: new Uint8Array(32).fill(2), timestamp: Date.now() },
      k.privateKey,
      k.publicJwk,
    ),
    consistency_from_previous: b.checkpoints[pos]!.consistency_from_previous,
  });
  const r2 = audit(b);
  t.notOk(r2.ok);
  t.ok(
    r2.problems.some((p) => p.code === 'checkpoint-inconsistent' && p.checkpoint === pos),
    `checkpoint #${pos} (size ${missing}) is not consistent with the one before`,
  );
  t.ok(r2.problems.some((p) => p.code === 'checkpoint-root-mismatch' && p.checkpoint === pos));
  t.equal(r2.firstBadEntry, undefined, 'no entry is blamed: the entries match every genuine checkpoint');
});

t.test("a notice's content gone with no erasure event: the log verifies, the loss is named", async (t) => {
  const first = (await g.gw.bus.jsm.streams.info(STREAMS.notices)).state.first_seq;
  await g.gw.bus.jsm.streams.purge(STREAMS.notices, { seq: first + 1 }); // a raw purge of the oldest notice's content
  const a = await exportArchive(g.gw.bus, brokerId, sigKeys, g.gw.keyring);
  t.equal(a.notices!.length, 11);
  const r = audit(a);
  const lost = entryIndexOf(a, ids[0]!);
  t.same(
    r.problems.map((p) => [p.code, p.index]),
    [['notice-content-missing', lost]],
    'not an erasure: the content is gone without a logged notice-erased event',
  );
  t.notOk(r.ok);
  t.equal(r.verifiedTreeSize, 12, 'every entry and checkpoint still verifies');
  t.same([r.noticesErased, r.noticesMissing, r.erasures.length], [1, 1, 0]);
  t.equal(r.noticesChecked, 11);
  const token = await makeClientAssertion('vn-customs', g.creds('vn-customs').signing, brokerId);
  const proof = await g.gw.app.inject({
    method: 'GET',
    url: `/v1/notices/${ids[0]}/proof`,
    headers: { authorization: `Bearer ${token}` },
  });
  t.equal(proof.statusCode, 200, 'its inclusion proof is still served');
  // Content changed in a held notice.
  const b = JSON.parse(JSON.stringify(a)) as AuditArchive;
  const sig = Buffer.from(b.notices![0]!.signed, 'base64url');
  sig[10] = sig[10]! ^ 1;
  b.notices![0]!.signed = sig.toString('base64url');
  t.ok(codes(b).includes('notice-commitment-mismatch'));
});

t.test('a malformed archive is refused', async (t) => {
  throwsWith(t, () => archiveToAuditInput({ format: 'other' }), ArchiveError, 'archive-invalid', {
    message: /not a liaison-audit-archive\/1 or/,
  });
  throwsWith(
    t,
    () => archiveToAuditInput({ ...copy(), entries: [{ index: -1, entry: '' }] }),
    ArchiveError,
    'archive-invalid',
    { message: /entries\[0\] needs a non-negative integer index/ },
  );
  throwsWith(t, () => archiveToAuditInput({ ...copy(), leaf_hashes: ['zz'] }), ArchiveError, 'archive-invalid', {
    message: /leaf_hashes\[0\] must be 64 lowercase hex digits/,
  });
});
