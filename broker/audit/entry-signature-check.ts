/**
 * One entry's gateway signature checked into plain data: what auditLog needs
 * to report it, whether the check ran in this thread or a worker
 * (entry-signature-pool.ts). Structured-clonable, so a worker's outcome is
 * the same value the in-thread check gives.
 */

import { EntrySignatureError, type EntrySignatureVerifier } from '../log/entry-signature.js';

export type EntrySignatureOutcome =
  { ok: true } | { ok: false; code: 'entry-unsigned' | 'entry-signature-invalid'; message: string };

const OK: EntrySignatureOutcome = { ok: true };

export function checkEntrySignature(
  verifier: EntrySignatureVerifier,
  bytes: Uint8Array,
  signature: string | undefined,
): EntrySignatureOutcome {
  try {
    verifier.verify(bytes, signature);
    return OK;
  } catch (err) {
    const code = err instanceof EntrySignatureError ? err.code : 'entry-signature-invalid';
    return { ok: false, code, message: (err as Error).message };
  }
}
