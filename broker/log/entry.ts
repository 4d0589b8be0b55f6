import canonicalize from 'canonicalize';

/**
 * A log entry: a small canonical JSON record (RFC 8785 JCS) that commits to a
 * notice or an event without holding its content. These exact bytes are what
 * the Merkle tree hashes (leaf = SHA-256(0x00 || bytes)).
 */
export interface NoticeLogEntry {
  v: 1;
  kind: 'notice';
  notice_id: string;
  /** Lower-case hex SHA-256 of the signed object as received. */
  sha256: string;
  format: 'jose' | 'openpgp';
  signer_kid: string;
  origin: { country: string; agency: string };
  operation: string;
  type: string;
  tlp: string;
  received_at: string;
  recipients: string[];
}

export type LogEntry = NoticeLogEntry;

const enc = new TextEncoder();

export function encodeEntry(entry: LogEntry): Uint8Array {
  const text = (canonicalize as unknown as (v: unknown) => string | undefined)(entry);
  if (text === undefined) throw new Error('entry cannot be canonicalized');
  return enc.encode(text);
}

export function decodeEntry(bytes: Uint8Array): LogEntry {
  return JSON.parse(new TextDecoder().decode(bytes)) as LogEntry;
}
