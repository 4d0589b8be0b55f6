/**
 * auditLog with the entries' gateway signatures checked on all cores first
 * (entry-signature-pool.ts): the same report, in about half the time on two
 * cores, the signatures being most of the work.
 */

import { checkEntrySignatures, type EntrySignaturePoolOptions } from './entry-signature-pool.js';
import { auditLog, type AuditInput, type AuditReport, type Progress } from './verify.js';

export async function auditLogOnAllCores(
  input: AuditInput,
  onProgress?: Progress,
  options?: EntrySignaturePoolOptions,
): Promise<AuditReport> {
  const outcomes = input.entrySignatures
    ? await checkEntrySignatures(input.brokerKeys, input.entries, options)
    : undefined;
  return auditLog(input, onProgress, outcomes);
}
