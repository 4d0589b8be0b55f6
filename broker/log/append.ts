import { subjectToken } from '../core/ids.js';
import type { StorePort } from '../core/store-port.js';
import { decodeEntry } from './entry.js';
import { ENTRY_SIGNATURE_HEADER } from './entry-signature.js';

/**
 * The header that carries a log entry (base64url) beside the record it
 * commits to (NOTICES, ACKS, REGISTRY_EVENTS), so whoever finds the record
 * without its entry in LOG appends exactly that entry.
 */
export const ENTRY_HEADER = 'Liaison-Log-Entry';

/**
 * The one writer of LOG. Append entry bytes with their gateway signature
 * (header Liaison-Log-Entry-Signature), de-duplicated by msgID: writing the
 * same entry twice is a no-op that returns the first position. New entries are
 * signed by their writer (signEntry) before they reach here; a re-append
 * (router, retries) passes the signature stored beside the entry, never a
 * fresh one. `signature` undefined only re-appends an entry written before
 * entry signatures: a no-op inside the duplicate window, otherwise an unsigned
 * entry the checkpointer refuses.
 */
export async function appendEntry(
  bus: Pick<StorePort, 'publish'>,
  msgID: string,
  bytes: Uint8Array,
  signature: string | undefined,
) {
  const kind = (decodeEntry(bytes) as { kind: string }).kind;
  const headers: Record<string, string> = { 'Liaison-Msg-Id': msgID };
  if (signature) headers[ENTRY_SIGNATURE_HEADER] = signature;
  return bus.publish(`log.${subjectToken(kind, 'log kind')}`, bytes, { msgID, headers });
}
