/**
 * One audit pass over an archive file, timed, in this (fresh) process: `node dist/bench/audit-pass.js FILE structure|origins`.
 * The file is read first; the clock covers parsing its JSON and the audit, as in an auditor's `liaison audit verify`
 * (structure: auditLog, the entry signatures on all cores; origins: auditLogWithOrigins, every notice's origin signature too). Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { auditLogOnAllCores } from '../broker/audit/verify-all-cores.js';

export interface AuditPassResult {
  ok: boolean;
  entries: number;
  noticesChecked: number;
  checkpoints: number;
  signaturesChecked: number;
  seconds: number;
}

async function main(file: string, mode: string): Promise<AuditPassResult> {
  if (mode !== 'structure' && mode !== 'origins') throw new Error('usage: audit-pass.js FILE structure|origins');
  const text = readFileSync(file, 'utf8');
  const t0 = performance.now();
  const input = archiveToAuditInput(JSON.parse(text));
  const report = mode === 'structure' ? await auditLogOnAllCores(input) : await auditLogWithOrigins(input);
  const seconds = (performance.now() - t0) / 1000;
  return {
    ok: report.ok,
    entries: report.entries,
    noticesChecked: report.noticesChecked,
    checkpoints: report.checkpoints,
    signaturesChecked: report.signaturesChecked ?? 0,
    seconds,
  };
}

main(process.argv[2] ?? '', process.argv[3] ?? '').then(
  (r) => process.stdout.write(JSON.stringify(r) + '\n'),
  (e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
