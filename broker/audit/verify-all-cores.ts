/**
 * auditLog with its per-entry work spread over all cores: worker threads
 * check the entries' gateway signatures (entry-signature-pool.ts; one
 * Ed25519 verification each, most of the work) while this thread hashes
 * and decodes the entries, then the scan runs over what both prepared. The
 * same report as auditLog alone.
 */

import { availableParallelism } from 'node:os';

import { checkEntrySignatures, type EntrySignaturePoolOptions } from './entry-signature-pool.js';
import {
  auditLog,
  prepareEntry,
  type AuditInput,
  type AuditReport,
  type PreparedEntries,
  type Progress,
} from './verify.js';

/** Fewer entries than this are audited in this thread: starting workers would cost more than they save. */
const MIN_ENTRIES = 4096;
/** Entries hashed and decoded between two turns of the event loop (the workers' answers get their next chunk). */
const SLICE = 1024;

export async function auditLogOnAllCores(
  input: AuditInput,
  onProgress?: Progress,
  options: EntrySignaturePoolOptions = {},
): Promise<AuditReport> {
  if (!input.entrySignatures || input.entries.length < MIN_ENTRIES) return auditLog(input, onProgress);
  // This thread has the hashing and decoding to do: the workers take the signatures, one per core.
  const signatures = checkEntrySignatures(input.brokerKeys, input.entries, {
    threads: availableParallelism(),
    shareThisThread: false,
    ...options,
  });
  const prepared = await prepareInSlices(input.entries);
  return auditLog(input, onProgress, { ...prepared, signatures: await signatures });
}

async function prepareInSlices(entries: AuditInput['entries']): Promise<Required<Omit<PreparedEntries, 'signatures'>>> {
  const leaves: Uint8Array[] = [];
  const decoded: NonNullable<PreparedEntries['decoded']>[number][] = [];
  for (let i = 0; i < entries.length; i++) {
    const p = prepareEntry(entries[i]!.bytes);
    leaves.push(p.leaf);
    decoded.push(p.decoded);
    if (i % SLICE === SLICE - 1) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { leaves, decoded };
}
