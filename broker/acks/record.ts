import { compactVerify } from 'jose';
import type { ResolvedSigner } from '../core/envelope.js';
import { LiaisonError } from '../core/errors.js';
import { isSlug, isUuid, subjectToken } from '../core/ids.js';
import { integrity, streamWhere } from '../core/integrity.js';
import { parseProtectedHeader } from '../core/jose-header.js';
import { parseStrictJson } from '../core/strict-json.js';
import { sha256Hex } from '../core/sha256.js';
import { appendEntry, ENTRY_HEADER } from '../log/append.js';
import { decodeEntry, encodeEntry, type AckLogEntry, type NoticeLogEntry } from '../log/entry.js';
import { ENTRY_SIGNATURE_HEADER, signEntry } from '../log/entry-signature.js';
import type { BrokerSigningKey } from '../keys/broker-keys.js';
import type { StorePort, StoredMessage } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { DELIVERY_HEADERS } from '../routing/plan.js';
import { ACK_TYP, type AckClaims } from './read-receipt.js';

/**
 * Read receipts. The receipt JWS is kept, as received, in stream ACKS on
 * `acks.<notice-id>.<agency>` (one subject per notice and recipient, so "is
 * there one already" is a last-by-subject lookup that holds beyond any
 * duplicate window), with its log entry in a header; the entry goes to LOG
 * (`log.ack`), Msg-Id `ack:<notice-id>:<agency>` on both.
 */
export const ACK_ENTRY_HEADER = ENTRY_HEADER;
/** The acknowledged notice's origin agency: who may list the receipts. */
export const ACK_ORIGIN_HEADER = 'Liaison-Origin';
export const ackSubject = (noticeId: string, agency: string) =>
  `acks.${subjectToken(noticeId, 'notice_id')}.${subjectToken(agency, 'agency')}`;
export const ackMsgId = (noticeId: string, agency: string) => `ack:${noticeId}:${agency}`;

const MAX_ACK_BYTES = 4096;
const HEX64 = /^[0-9a-f]{64}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const mismatch = (publicDetail: string) => new LiaisonError('ack-mismatch', { publicDetail });

/**
 * The ack log entry a stored receipt carries, or undefined when the message is
 * not a receipt the broker stored (junk in ACKS: reported as a finding, skipped).
 */
function storedAckEntry(m: StoredMessage): { entry: AckLogEntry; bytes: Uint8Array } | undefined {
  const bytes = Buffer.from(m.header?.get(ACK_ENTRY_HEADER) ?? '', 'base64url');
  let entry: Partial<AckLogEntry> | undefined;
  try {
    entry = bytes.length === 0 ? undefined : (decodeEntry(bytes) as Partial<AckLogEntry>);
  } catch {
    entry = undefined;
  }
  const ok =
    typeof entry === 'object' &&
    entry !== null &&
    entry.kind === 'ack' &&
    isUuid(entry.notice_id) &&
    isSlug(entry.agency) &&
    typeof entry.signer_kid === 'string' &&
    typeof entry.acked_at === 'string' &&
    typeof entry.received_at === 'string' &&
    typeof entry.sha256 === 'string' &&
    HEX64.test(entry.sha256) &&
    m.data.length > 0;
  if (ok) return { entry: entry as AckLogEntry, bytes };
  integrity.report(undefined, 'acks', streamWhere(STREAMS.acks, m.seq), 'not a stored read receipt');
  return undefined;
}

export interface RecordedAck {
  notice_id: string;
  agency: string;
  log_index: number;
  received_at: string;
  duplicate: boolean;
}

export interface AckDeps {
  bus: StorePort;
  resolveSigner: (kid: string) => Promise<ResolvedSigner>;
  clockSkewSeconds: number;
  /** The broker's current signing key (signs the receipt's log entry). */
  signer: () => BrokerSigningKey;
  now?: () => Date;
}

/** Check the claims as plain data copied out of the payload: exactly the four members, each well formed. */
function checkClaims(value: unknown): AckClaims {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new LiaisonError('bad-request', { publicDetail: 'the receipt payload must be a JSON object' });
  const v = value as Record<string, unknown>;
  const keys = Object.keys(v).sort().join(',');
  if (keys !== 'acked_at,cursor,notice_id,sha256')
    throw new LiaisonError('bad-request', {
      publicDetail: 'the receipt must hold exactly notice_id, cursor, sha256 and acked_at',
    });
  if (!isUuid(v.notice_id))
    throw new LiaisonError('bad-request', { publicDetail: 'notice_id must be a lower-case UUID' });
  if (typeof v.cursor !== 'number' || !Number.isSafeInteger(v.cursor) || v.cursor < 1)
    throw new LiaisonError('bad-request', { publicDetail: 'cursor must be a delivery cursor' });
  if (typeof v.sha256 !== 'string' || !HEX64.test(v.sha256))
    throw new LiaisonError('bad-request', { publicDetail: 'sha256 must be lower-case hex' });
  if (typeof v.acked_at !== 'string' || !RFC3339.test(v.acked_at) || Number.isNaN(Date.parse(v.acked_at)))
    throw new LiaisonError('bad-request', { publicDetail: 'acked_at must be an RFC 3339 date-time' });
  return { notice_id: v.notice_id, cursor: v.cursor, sha256: v.sha256, acked_at: v.acked_at };
}

/**
 * Record a read receipt of `agency` (the authenticated caller):
 *  1. the JWS header (alg allowlist, kid, typ) and the signer: an active
 *     signing key of the caller itself;
 *  2. the signature, then the claims (strict JSON, exactly four members);
 *  3. the delivery at `cursor` is one to this agency, of this notice, and the
 *     notice's log entry commits to `sha256`;
 *  4. acked_at not in the future (beyond the skew) nor before the notice was received;
 *  5. store (ACKS) then log (LOG); the first receipt of a notice by an agency
 *     stands, a later one is answered with the first (idempotent).
 */
export async function recordAck(deps: AckDeps, agency: string, jws: string): Promise<RecordedAck> {
  const { bus } = deps;
  if (jws.length > MAX_ACK_BYTES)
    throw new LiaisonError('too-large', { publicDetail: `a read receipt is at most ${MAX_ACK_BYTES} bytes` });
  const parts = jws.split('.');
  if (parts.length !== 3) throw new LiaisonError('bad-request', { publicDetail: 'the body must be a compact JWS' });
  const header = parseProtectedHeader(parts[0] as string, {
    what: 'JWS',
    allowedAlgs: ['EdDSA', 'Ed25519', 'ES256'],
    allowedParams: ['alg', 'kid', 'typ'],
  });
  if (header.typ !== ACK_TYP) throw new LiaisonError('bad-request', { publicDetail: `typ must be ${ACK_TYP}` });
  const signer = await deps.resolveSigner(header.kid);
  if (signer.agencyId !== agency)
    throw new LiaisonError('forbidden', {
      publicDetail: 'a read receipt must be signed by the acknowledging agency itself',
    });
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, signer.key, { algorithms: [...signer.algorithms] }));
  } catch (e) {
    throw new LiaisonError('signature-invalid', { detail: `ack signature: ${(e as Error).message}`, cause: e });
  }
  const claims = checkClaims(parseStrictJson(payload, { maxBytes: MAX_ACK_BYTES, maxDepth: 2 }));

  // 3. The delivery really went to this agency.
  const delivery = await bus.getMessage(STREAMS.deliveries, claims.cursor);
  if (
    !delivery ||
    !delivery.subject.startsWith(`deliveries.${subjectToken(agency, 'agency')}.`) ||
    delivery.header?.get(DELIVERY_HEADERS.noticeId) !== claims.notice_id
  ) {
    throw mismatch('no delivery of this notice to this agency at that cursor');
  }
  const logIndex = Number(delivery.header?.get(DELIVERY_HEADERS.logIndex));
  const logged =
    Number.isSafeInteger(logIndex) && logIndex >= 0 ? await bus.getMessage(STREAMS.log, logIndex + 1) : null;
  let noticeEntry: NoticeLogEntry | undefined;
  try {
    noticeEntry = logged ? (decodeEntry(logged.data) as NoticeLogEntry) : undefined;
  } catch {
    // Not JSON at that LOG position: the same answer as a missing entry (503), never a 500.
    noticeEntry = undefined;
  }
  if (!noticeEntry || noticeEntry.kind !== 'notice' || noticeEntry.notice_id !== claims.notice_id)
    throw new LiaisonError('unavailable', { detail: `the log entry of ${claims.notice_id} is not at ${logIndex}` });
  if (noticeEntry.sha256 !== claims.sha256) throw mismatch('sha256 is not the hash of the signed notice delivered');

  // 4. Times.
  const now = (deps.now ?? (() => new Date()))();
  const acked = Date.parse(claims.acked_at);
  if (acked > now.getTime() + deps.clockSkewSeconds * 1000)
    throw new LiaisonError('clock-skew', { publicDetail: 'acked_at is in the future' });
  if (acked < Date.parse(noticeEntry.received_at) - deps.clockSkewSeconds * 1000)
    throw mismatch('acked_at is before the broker received the notice');

  // 5. Store, then log. The first receipt stands.
  const subject = ackSubject(claims.notice_id, agency);
  const last = await bus.lastMessage(STREAMS.acks, subject, 'acks lookup');
  // Junk stored under the subject is not a first receipt (a finding): this one is stored.
  const existing = last ? storedAckEntry(last) : undefined;
  const msgID = ackMsgId(claims.notice_id, agency);
  let entryBytes: Uint8Array;
  let signature: string | undefined;
  let duplicate = false;
  if (existing) {
    entryBytes = existing.bytes;
    signature = last?.header?.get(ENTRY_SIGNATURE_HEADER) || undefined;
    duplicate = true;
  } else {
    const entry: AckLogEntry = {
      v: 1,
      kind: 'ack',
      notice_id: claims.notice_id,
      agency,
      signer_kid: signer.kid,
      sha256: sha256Hex(jws),
      acked_at: claims.acked_at,
      received_at: now.toISOString(),
    };
    entryBytes = encodeEntry(entry);
    signature = signEntry(deps.signer(), entryBytes);
    const ack = await bus.publish(subject, new TextEncoder().encode(jws), {
      msgID,
      headers: {
        [ACK_ENTRY_HEADER]: Buffer.from(entryBytes).toString('base64url'),
        [ENTRY_SIGNATURE_HEADER]: signature,
        [ACK_ORIGIN_HEADER]: noticeEntry.origin.agency,
        'Liaison-Notice-Id': claims.notice_id,
      },
    });
    if (ack.duplicate) {
      // A concurrent first receipt won: answer with it.
      const stored = await bus.getMessage(STREAMS.acks, ack.seq);
      const first = stored ? storedAckEntry(stored) : undefined;
      if (!first)
        throw new LiaisonError('unavailable', {
          detail: `the first read receipt of ${claims.notice_id} by ${agency} is not readable`,
        });
      entryBytes = first.bytes;
      signature = stored?.header?.get(ENTRY_SIGNATURE_HEADER) || undefined;
      duplicate = true;
    }
  }
  // Same Msg-Id: a no-op when already logged; writes the entry if a crash lost it.
  const logAck = await appendEntry(bus, msgID, entryBytes, signature);
  const entry = decodeEntry(entryBytes) as AckLogEntry;
  return { notice_id: entry.notice_id, agency, log_index: logAck.seq - 1, received_at: entry.received_at, duplicate };
}

export interface ListedAck {
  agency: string;
  signer_kid: string;
  acked_at: string;
  received_at: string;
  /** The recipient's receipt, a compact JWS exactly as received: verify it with the recipient's key. */
  ack: string;
  /** Lower-case hex SHA-256 of `ack`, as committed in the log entry. */
  sha256: string;
}

/** The read receipts of a notice, for its origin agency only (anyone else: the same not-found as no receipts). */
export async function listAcks(bus: StorePort, noticeId: string, caller: string): Promise<ListedAck[]> {
  if (!isUuid(noticeId))
    throw new LiaisonError('bad-request', { publicDetail: 'the notice id must be a lower-case UUID' });
  const subject = `acks.${noticeId}.*`;
  const out: ListedAck[] = [];
  let seq = 1;
  for (let i = 0; i < 10_000; i++) {
    const m = await bus.nextMessage(STREAMS.acks, seq, subject, 'acks list');
    if (!m) break;
    seq = m.seq + 1;
    // Junk (not a receipt the broker stored) is skipped with a finding, before the origin check: it must not hide the real ones.
    const stored = storedAckEntry(m);
    if (!stored) continue;
    if (m.header?.get(ACK_ORIGIN_HEADER) !== caller)
      throw new LiaisonError('not-found', { publicDetail: 'no notice of yours with read receipts under this id' });
    const { entry } = stored;
    out.push({
      agency: entry.agency,
      signer_kid: entry.signer_kid,
      acked_at: entry.acked_at,
      received_at: entry.received_at,
      ack: new TextDecoder().decode(m.data),
      sha256: entry.sha256,
    });
  }
  // None at all reads the same as none of yours: no oracle on who acknowledged what.
  if (out.length === 0)
    throw new LiaisonError('not-found', { publicDetail: 'no notice of yours with read receipts under this id' });
  return out;
}
