/** Audit verify rate (entries/s of broker/audit/verify.ts over an exported archive) beside the raw Ed25519 verify rate. */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLog } from '../broker/audit/verify.js';
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
  return {
    entries: report.entries,
    notices: report.noticesChecked,
    checkpoints: report.checkpoints,
    ok: report.ok,
    exportSeconds: round(exportSeconds, 2),
    verifySeconds: round(verifySeconds, 3),
    entriesPerSecond: round(report.entries / verifySeconds),
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
