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
  /** The envelope format it came in: a name registered in broker/formats/registry.ts. */
  format: string;
  signer_kid: string;
  origin: { country: string; agency: string };
  operation: string;
  type: string;
  tlp: string;
  received_at: string;
  recipients: string[];
}

/**
 * A recipient's signed read receipt (POST /v1/inbox/ack): who acknowledged
 * which notice, with which key, when. Commits to the receipt JWS (kept in the
 * ACKS stream), not its content. Msg-Id `ack:<notice-id>:<agency>`.
 */
export interface AckLogEntry {
  v: 1;
  kind: 'ack';
  notice_id: string;
  /** The acknowledging (recipient) agency. */
  agency: string;
  signer_kid: string;
  /** Lower-case hex SHA-256 of the receipt's compact JWS as received. */
  sha256: string;
  /** The recipient's own time, as signed. */
  acked_at: string;
  /** The broker's time. */
  received_at: string;
}

/**
 * A recipient's signed complaint about a notice (POST /v1/inbox/complaint):
 * who complained about which notice, with which key, for which reason, when.
 * Commits to the complaint JWS (kept in the ACKS stream), not its free-text
 * detail. Msg-Id `complaint:<notice-id>:<agency>`: one per notice and recipient.
 */
export interface ComplaintLogEntry {
  v: 1;
  kind: 'complaint';
  notice_id: string;
  /** The complaining (recipient) agency. */
  agency: string;
  signer_kid: string;
  /** Lower-case hex SHA-256 of the complaint's compact JWS as received. */
  sha256: string;
  /** The reason code, from the closed list (broker/acks/complaint.ts). */
  reason: string;
  /** The recipient's own time, as signed. */
  complained_at: string;
  /** The broker's time. */
  received_at: string;
}

/**
 * A registry change made through the admin API (a broker or agency key added,
 * rotated or revoked; an agency or operation record set). Commits to the
 * broker-signed event JWS kept in stream REGISTRY_EVENTS
 * (registry-events.<event-id>). Msg-Id `registry:<event-id>`.
 */
export interface RegistryLogEntry {
  v: 1;
  kind: 'registry';
  event_id: string;
  /** The event type, e.g. broker-signing-key-rotated, agency-key-revoked. */
  event: string;
  /** What changed: the broker's own keys, an agency (its keys or its record), an operation, or a notice (erased). */
  subject: { broker: string } | { agency: string } | { operation: string } | { notice: string };
  /** The kids added, retired or revoked. */
  kids: string[];
  /** The operator agency that asked for the change; the broker's id for the broker's own (retention). */
  actor: string;
  /** The broker signing key that signed the event (for a signing rotation: the outgoing key, vouching for its successor). */
  signer_kid: string;
  /** Lower-case hex SHA-256 of the event's compact JWS. */
  sha256: string;
  received_at: string;
}

export type LogEntry = NoticeLogEntry | AckLogEntry | ComplaintLogEntry | RegistryLogEntry;

/** Entry kinds the log may hold; anything else is malformed. */
export const LOG_ENTRY_KINDS = ['notice', 'ack', 'complaint', 'registry'] as const;

const enc = new TextEncoder();

export function encodeEntry(entry: LogEntry): Uint8Array {
  const text = canonicalize(entry);
  if (text === undefined) throw new Error('entry cannot be canonicalized');
  return enc.encode(text);
}

export function decodeEntry(bytes: Uint8Array): LogEntry {
  return JSON.parse(new TextDecoder().decode(bytes)) as LogEntry;
}
