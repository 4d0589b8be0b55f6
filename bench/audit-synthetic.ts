/**
 * A synthetic audit archive of N notice entries, each signed as the gateway signs it, one checkpoint over
 * them all and every notice's content: for timing and profiling the audit pass (audit-pass.ts) without a
 * full bench run.  node dist/bench/audit-synthetic.js FILE [entries=20000]
 */
import { createHash, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { signCheckpoint, type PublicSigningJwk } from '../broker/log/checkpoint.js';
import { CompactRange } from '../broker/log/compact-range.js';
import { encodeEntry, type NoticeLogEntry } from '../broker/log/entry.js';
import { signEntry } from '../broker/log/entry-signature.js';
import { leafHash } from '../broker/log/merkle.js';
import { ARCHIVE_FORMAT, type AuditArchive } from '../broker/audit/archive.js';

export async function syntheticArchive(n: number, origin = 'liaison.bench.example'): Promise<AuditArchive> {
  const pair = (await webcrypto.subtle.generateKey('Ed25519', true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const jwk = (await webcrypto.subtle.exportKey('jwk', pair.publicKey)) as PublicSigningJwk;
  const publicJwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: 'bench-sig-1', use: 'sig', alg: 'EdDSA' };
  const key = { kid: 'bench-sig-1', alg: 'EdDSA' as const, privateKey: pair.privateKey, publicJwk };
  const range = CompactRange.empty();
  const archive: AuditArchive = {
    format: ARCHIVE_FORMAT,
    origin,
    exported_at: new Date().toISOString(),
    broker_keys: [publicJwk],
    entries: [],
    checkpoints: [],
    notices: [],
  };
  for (let i = 0; i < n; i++) {
    const noticeId = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    const signed = Buffer.alloc(1500, i % 251);
    const entry: NoticeLogEntry = {
      v: 1,
      kind: 'notice',
      notice_id: noticeId,
      sha256: createHash('sha256').update(signed).digest('hex'),
      format: 'jose',
      signer_kid: 'vn-customs-sig-1',
      origin: { country: 'VN', agency: 'vn-customs' },
      operation: 'mekong-dragon-6',
      type: 'seizure-report',
      tlp: 'AMBER',
      received_at: new Date(1_800_000_000_000 + i).toISOString(),
      recipients: ['cn-customs', 'la-customs', 'th-customs', 'vn-c04'],
    };
    const bytes = encodeEntry(entry);
    archive.entries.push({
      index: i,
      entry: Buffer.from(bytes).toString('base64url'),
      signature: signEntry(key, bytes),
    });
    archive.notices!.push({ notice_id: noticeId, signed: signed.toString('base64url') });
    range.append(leafHash(bytes));
  }
  archive.checkpoints.push({
    note: await signCheckpoint(
      { origin, treeSize: n, rootHash: range.root(), timestamp: Date.now() },
      pair.privateKey,
      publicJwk,
    ),
    consistency_from_previous: [],
  });
  return archive;
}

if (process.argv[1]?.endsWith('audit-synthetic.js')) {
  const [file, count] = process.argv.slice(2);
  if (!file) throw new Error('usage: audit-synthetic.js FILE [entries]');
  writeFileSync(file, JSON.stringify(await syntheticArchive(Number(count ?? 20000))));
}
