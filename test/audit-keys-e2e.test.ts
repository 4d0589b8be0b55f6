/**
 * Origin signatures against the key history on a real gateway (real NATS):
 * notices, an agency key rotation (new key, old one revoked now, then dropped
 * from the record), more notices, export (the archive carries every registry
 * revision's keys), verify → clean; then a stored notice's JWS swapped for
 * one by another agency's valid key, its commitment fixed up and the log
 * re-anchored so that only the signature check can catch it → named.
 */
import { signEntry } from '../broker/log/entry-signature.js';
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signNotice } from '../broker/agency-client/seal.js';
import { archiveToAuditInput, ARCHIVE_FORMAT, type AuditArchive } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { run } from '../broker/cli/liaison.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { parseCheckpoint, signCheckpoint } from '../broker/log/checkpoint.js';
import { decodeEntry, encodeEntry, type NoticeLogEntry } from '../broker/log/entry.js';
import { consistencyProof, leafHash, rootFromLeafHashes } from '../broker/log/merkle.js';
import type { Agency } from '../broker/registry/model.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { sleep, waitFor } from './helpers/wait.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  checkpointEveryEntries: 4,
  checkpointIntervalMs: 300,
  leaseTtlSeconds: 2,
});
const brokerId = g.config.brokerId;
const sigKeys = g.jwks.keys.filter((k) => k.use === 'sig');
const dir = mkdtempSync(join(tmpdir(), 'liaison-audit-keys-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const OLD = 'vn-customs-sig-1';
const rotated = await makeKeyPair('Ed25519', 'vn-customs-sig-2');
const notice = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });
const post = async (signingKey?: typeof rotated.privateJwk) => {
  const n = notice();
  const res = await g.post((await g.seal(n, 'vn-customs', signingKey ? { signingKey } : {})).jwe);
  return { n, res };
};
const putAgency = async (a: Agency, seen: (x: Agency) => boolean) => {
  await g.gw.registry.putAgency(a);
  await waitFor(
    () => (seen(g.gw.registry.snapshot.agency(a.id)!) ? true : undefined),
    `registry change of ${a.id}`,
    5000,
  );
};

// Setup only (assertions belong in subtests): statuses are checked below.
const statuses: number[] = [];
for (let i = 0; i < 4; i++) statuses.push((await post()).res.status);

// Rotation, as an operator does it: add the new key, revoke the old one as of now, later drop it from the record.
const vn = structuredClone<Agency>(g.gw.registry.snapshot.agency('vn-customs')!);
vn.keys.push({
  kid: rotated.kid,
  use: 'sig',
  jwk: rotated.publicJwk as Agency['keys'][number]['jwk'],
  status: 'active',
});
await putAgency(vn, (a) => a.keys.some((k) => k.kid === rotated.kid));
await sleep(5);
const revokedAt = new Date().toISOString();
vn.keys = vn.keys.map((k) => (k.kid === OLD ? { ...k, status: 'revoked' as const, revoked_at: revokedAt } : k));
await putAgency(vn, (a) => a.keys.find((k) => k.kid === OLD)?.status === 'revoked');
const oldKeyAfterRevocation = (await post()).res.status;
for (let i = 0; i < 4; i++) statuses.push((await post(rotated.privateJwk)).res.status);
vn.keys = vn.keys.filter((k) => k.kid !== OLD);
await putAgency(vn, (a) => !a.keys.some((k) => k.kid === OLD));

await waitFor(() => (g.gw.checkpointer!.status.checkpointSize === 8 ? true : undefined), 'checkpoint 8');
const archive = await exportArchive(g.gw.bus, brokerId, sigKeys, g.gw.keyring);
const entry = (a: AuditArchive, i: number) =>
  decodeEntry(Buffer.from(a.entries[i]!.entry, 'base64url')) as NoticeLogEntry;
const copy = (): AuditArchive => JSON.parse(JSON.stringify(archive)) as AuditArchive;
const audit = (a: AuditArchive) => auditLogWithOrigins(archiveToAuditInput(a));

/** Re-anchor a changed archive as a hub holding the broker key could: new leaf hashes, re-signed checkpoints (same sizes and times), new consistency proofs. */
async function reanchor(a: AuditArchive): Promise<void> {
  const leaves = a.entries.map((e) => leafHash(Buffer.from(e.entry, 'base64url')));
  const node = (level: number, index: number) =>
    rootFromLeafHashes(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level));
  const k = g.gw.keyring.signing;
  let prev: number | undefined;
  for (const c of a.checkpoints) {
    const cp = parseCheckpoint(c.note).checkpoint;
    const root = cp.treeSize === 0 ? rootFromLeafHashes([]) : rootFromLeafHashes(leaves.slice(0, cp.treeSize));
    c.note = await signCheckpoint({ ...cp, rootHash: root }, k.privateKey, k.publicJwk);
    c.consistency_from_previous =
      prev !== undefined && prev < cp.treeSize
        ? consistencyProof(prev, cp.treeSize, node).map((h) => Buffer.from(h).toString('hex'))
        : [];
    prev = cp.treeSize;
  }
  a.leaf_hashes = leaves.map((h) => Buffer.from(h).toString('hex'));
}

/** Replace notice i's stored signed object and fix up its entry's commitment (and whatever else `patch` changes). */
async function replaceNotice(
  a: AuditArchive,
  i: number,
  jws: string,
  patch: Partial<NoticeLogEntry> = {},
): Promise<void> {
  const e = { ...entry(a, i), ...patch };
  const held = a.notices!.find((n) => n.notice_id === e.notice_id)!;
  held.signed = Buffer.from(jws).toString('base64url');
  e.sha256 = sha256Hex(new TextEncoder().encode(jws));
  a.entries[i]!.entry = Buffer.from(encodeEntry(e)).toString('base64url');
  // The forger is the hub itself (it holds the broker key): it re-signs the entry too, so only the origin signature is left to catch it.
  a.entries[i]!.signature = signEntry(g.gw.keyring.signing, encodeEntry(e));
  await reanchor(a);
}

t.test('a rotated and revoked key still verifies what it signed while valid', async (t) => {
  t.same(statuses, Array(8).fill(202), '4 notices by the old key, 4 by the new one');
  t.equal(oldKeyAfterRevocation, 403, 'the old key is refused once revoked');
  t.equal(archive.format, ARCHIVE_FORMAT);
  const keys = archive.agency_keys!.filter((k) => k.agency === 'vn-customs' && k.use === 'sig');
  t.same(
    keys.map((k) => `${k.kid}:${k.status}`).sort(),
    [`${OLD}:revoked`, `${rotated.kid}:active`],
    'the key dropped from the record is still in the history, with its revocation',
  );
  t.equal(keys.find((k) => k.kid === OLD)!.revoked_at, revokedAt);
  t.ok(
    archive.agency_keys!.some((k) => k.agency === 'th-customs'),
    'every agency',
  );
  t.same(
    [0, 1, 2, 3, 4, 5, 6, 7].map((i) => entry(archive, i).signer_kid),
    [OLD, OLD, OLD, OLD, rotated.kid, rotated.kid, rotated.kid, rotated.kid],
  );

  const r = await audit(archive);
  t.same(r.problems, []);
  t.ok(r.ok);
  t.equal(r.signaturesChecked, 8);
  t.equal(r.signaturesNotChecked, 0);

  const file = join(dir, 'clean.json');
  writeFileSync(file, JSON.stringify(archive));
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  t.equal(await run(['audit', 'verify', '--archive', file], io), 0);
  t.match(out, /8 origin signatures checked against the agency key history/);
  t.match(out, /the log verifies/);
});

t.test("a notice's JWS replaced by one signed with another agency's valid key is named", async (t) => {
  const target = 5;
  const a = copy();
  const forged = await signNotice(new TextEncoder().encode(JSON.stringify(notice())), g.creds('th-customs').signing);
  await replaceNotice(a, target, forged);
  const r = await audit(a);
  t.notOk(r.ok);
  t.same(
    r.problems.map((p) => [p.code, p.index]),
    [['notice-signer-mismatch', target]],
    'the log, checkpoints and commitments all verify: only the signature check catches it',
  );
  t.equal(r.firstBadEntry, target);

  const file = join(dir, 'forged.json');
  writeFileSync(file, JSON.stringify(a));
  let out = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
  t.equal(await run(['audit', 'verify', '--archive', file], io), 1, 'non-zero exit');
  t.match(
    out,
    new RegExp(`PROBLEM notice-signer-mismatch: notice ${entry(a, target).notice_id} \\(entry ${target}\\)`),
  );
  t.match(out, new RegExp(`first bad entry: ${target}`));

  // The entry rewritten to name the other agency's key too: that key is not the origin agency's.
  const b = copy();
  await replaceNotice(b, target, forged, { signer_kid: 'th-customs-sig-1' });
  t.same(
    (await audit(b)).problems.map((p) => [p.code, p.index]),
    [['notice-signer-wrong-agency', target]],
  );

  // The origin's own old key, after its revocation: a signature by a key already revoked at received_at.
  const c = copy();
  const late = await signNotice(new TextEncoder().encode(JSON.stringify(notice())), g.creds('vn-customs').signing);
  await replaceNotice(c, 6, late, { signer_kid: OLD });
  const rc = await audit(c);
  t.same(
    rc.problems.map((p) => [p.code, p.index]),
    [['notice-signer-not-valid', 6]],
  );
  t.match(rc.problems[0]!.message, /was revoked at received_at/);

  // The same JWS under an entry received before the revocation verifies: it was signed while valid.
  const d = copy();
  await replaceNotice(d, 2, late);
  t.same((await audit(d)).problems, []);
});
