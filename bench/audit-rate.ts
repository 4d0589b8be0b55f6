/**
 * Audit verify rates over an exported archive, beside the raw Ed25519 verify rate:
 * the log's structure (auditLog: entries, Merkle tree, checkpoint signatures, commitments)
 * and, as `liaison audit verify` runs on an archive that carries the agency key history,
 * that plus every notice's origin signature (auditLogWithOrigins). Each is one first pass
 * in this process over the archive's JSON text, as an auditor's run would make.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLog } from '../broker/audit/verify.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import type { NatsBus } from '../broker/nats/connection.js';
import type { JWK } from 'jose';
import { round } from './stats.js';

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

export async function measureAuditVerify(bus: NatsBus, origin: string, brokerKeys: JWK[]): Promise<AuditRate> {
  const e0 = performance.now();
  const archive = await exportArchive(bus, origin, brokerKeys as never);
  const exportSeconds = (performance.now() - e0) / 1000;
  // The archive as a file would hold it: JSON text, parsed and checked by archiveToAuditInput.
  const text = JSON.stringify(archive);
  const t0 = performance.now();
  const report = auditLog(archiveToAuditInput(JSON.parse(text)));
  const verifySeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const full = await auditLogWithOrigins(archiveToAuditInput(JSON.parse(text)));
  const fullSeconds = (performance.now() - t1) / 1000;
  return {
    entries: report.entries,
    notices: report.noticesChecked,
    checkpoints: report.checkpoints,
    ok: report.ok,
    exportSeconds: round(exportSeconds, 2),
    verifySeconds: round(verifySeconds, 3),
    entriesPerSecond: round(report.entries / verifySeconds),
    withOrigins: { ok: full.ok, signaturesChecked: full.signaturesChecked ?? 0, verifySeconds: round(fullSeconds, 3), entriesPerSecond: round(full.entries / fullSeconds) },
  };
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
