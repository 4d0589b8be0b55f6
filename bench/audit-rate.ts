/**
 * Audit verify rates over an exported archive, beside the raw Ed25519 verify rate:
 * the log's structure (auditLog: entries, Merkle tree, checkpoint signatures, commitments)
 * and, as `liaison audit verify` runs on an archive that carries the agency key history,
 * that plus every notice's origin signature (auditLogWithOrigins). The archive is written
 * to a file, as an auditor receives it, and each rate is one first pass over its JSON text
 * in a fresh process (audit-pass.ts), as an auditor's run would make: timed in the bench's
 * own process, which still held the exported archive and the run's garbage (~1 GB of heap
 * for 35 000 entries), the same pass ran at a third to a half of that speed.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StorageKeyring } from '../broker/vault/open.js';
import { exportArchive } from '../broker/audit/export.js';
import type { NatsBus } from '../broker/nats/connection.js';
import type { JWK } from 'jose';
import type { AuditPassResult } from './audit-pass.js';
import { round } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));

/** One timed pass (audit-pass.ts) over the archive file in a new node process. */
function passInFreshProcess(file: string, mode: 'structure' | 'origins'): AuditPassResult {
  const r = spawnSync(process.execPath, [join(here, 'audit-pass.js'), file, mode], {
    encoding: 'utf8',
    timeout: 600_000,
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`audit pass (${mode}) failed (${r.status ?? r.signal}): ${r.stderr.slice(-800)}`);
  return JSON.parse(r.stdout) as AuditPassResult;
}

export interface AuditRate {
  entries: number;
  notices: number;
  checkpoints: number;
  ok: boolean;
  exportSeconds: number;
  verifySeconds: number;
  entriesPerSecond: number;
  /** The same archive with every notice's origin signature checked (auditLogWithOrigins). */
  withOrigins: { ok: boolean; signaturesChecked: number; verifySeconds: number; entriesPerSecond: number };
}

/** `storage`: the gateway's keyring, to open the sealed notices (without it the archive holds none to check). */
export async function measureAuditVerify(
  bus: NatsBus,
  origin: string,
  brokerKeys: JWK[],
  storage: StorageKeyring,
): Promise<AuditRate> {
  const e0 = performance.now();
  const archive = await exportArchive(bus, origin, brokerKeys, storage);
  const exportSeconds = (performance.now() - e0) / 1000;
  const dir = mkdtempSync(join(tmpdir(), 'liaison-audit-'));
  try {
    const file = join(dir, 'archive.json');
    writeFileSync(file, JSON.stringify(archive));
    const report = passInFreshProcess(file, 'structure');
    const full = passInFreshProcess(file, 'origins');
    return {
      entries: report.entries,
      notices: report.noticesChecked,
      checkpoints: report.checkpoints,
      ok: report.ok,
      exportSeconds: round(exportSeconds, 2),
      verifySeconds: round(report.seconds, 3),
      entriesPerSecond: round(report.entries / report.seconds),
      withOrigins: {
        ok: full.ok,
        signaturesChecked: full.signaturesChecked,
        verifySeconds: round(full.seconds, 3),
        entriesPerSecond: round(full.entries / full.seconds),
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Raw Ed25519 verifications per second (node:crypto, one thread) over a log-entry-sized message. */
export function rawEd25519VerifyRate(durationMs = 1000): { perSecond: number; messageBytes: number } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const msg = Buffer.alloc(400, 7);
  const sig = sign(null, msg, privateKey);
  let n = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) if (!verify(null, msg, publicKey, sig)) throw new Error('verify failed');
    n += 100;
  }
  return { perSecond: round(n / ((performance.now() - t0) / 1000)), messageBytes: msg.length };
}
