import { LiaisonError } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';
import { isRfc3339, isSha256Hex, isUuid, subjectToken } from '../core/ids.js';
import { STREAMS } from '../core/stream-names.js';
import { decodeEntry, type AckLogEntry, type NoticeLogEntry } from '../log/entry.js';
import { DELIVERY_HEADERS } from '../routing/plan.js';
import { ACK_TYP, type AckClaims } from './read-receipt.js';
import {
  checkSignedTime,
  listStatements,
  openStatement,
  statementMsgId,
  statementSubject,
  storeAndLog,
  STATEMENT_ENTRY_HEADER,
  STATEMENT_ORIGIN_HEADER,
  type StatementDeps,
  type StatementKind,
} from './recipient-statement.js';

/**
 * Read receipts. The receipt JWS is kept, as received, in stream ACKS on
 * `acks.<notice-id>.<agency>` with its log entry in a header; the entry goes
 * to LOG (`log.ack`), Msg-Id `ack:<notice-id>:<agency>` on both
 * (recipient-statement.ts).
 */
export const ACK_ENTRY_HEADER = STATEMENT_ENTRY_HEADER;
/** The acknowledged notice's origin agency: who may list the receipts. */
export const ACK_ORIGIN_HEADER = STATEMENT_ORIGIN_HEADER;

export const ACK_KIND: StatementKind<AckLogEntry> = {
  kind: 'ack',
  typ: ACK_TYP,
  what: 'read receipt',
  subjectToken: 'acks',
  signedAt: 'acked_at',
  maxBytes: 4096,
  isWellFormed: () => true,
};
export const ackSubject = (noticeId: string, agency: string) => statementSubject(ACK_KIND, noticeId, agency);
export const ackMsgId = (noticeId: string, agency: string) => statementMsgId(ACK_KIND, noticeId, agency);

const mismatch = (publicDetail: string) => new LiaisonError('ack-mismatch', { publicDetail });

export interface RecordedAck {
  notice_id: string;
  agency: string;
  log_index: number;
  received_at: string;
  duplicate: boolean;
}

export type AckDeps = StatementDeps;

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
  if (!isSha256Hex(v.sha256)) throw new LiaisonError('bad-request', { publicDetail: 'sha256 must be lower-case hex' });
  if (!isRfc3339(v.acked_at))
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
  const { payload, signer } = await openStatement(deps, ACK_KIND, agency, jws);
  const claims = checkClaims(payload);

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
  checkSignedTime(deps, now, 'acked_at', claims.acked_at, noticeEntry.received_at, mismatch);

  // 5. Store, then log. The first receipt stands.
  const recorded = await storeAndLog(
    deps,
    ACK_KIND,
    jws,
    {
      v: 1,
      kind: 'ack',
      notice_id: claims.notice_id,
      agency,
      signer_kid: signer.kid,
      sha256: sha256Hex(jws),
      acked_at: claims.acked_at,
      received_at: now.toISOString(),
    },
    noticeEntry.origin.agency,
  );
  const { entry } = recorded;
  return {
    notice_id: entry.notice_id,
    agency,
    log_index: recorded.log_index,
    received_at: entry.received_at,
    duplicate: recorded.duplicate,
  };
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
export async function listAcks(
  deps: Pick<StatementDeps, 'bus' | 'storageKeys'>,
  noticeId: string,
  caller: string,
): Promise<ListedAck[]> {
  return (await listStatements(deps, ACK_KIND, noticeId, caller)).map(({ entry, jws }) => ({
    agency: entry.agency,
    signer_kid: entry.signer_kid,
    acked_at: entry.acked_at,
    received_at: entry.received_at,
    ack: jws,
    sha256: entry.sha256,
  }));
}
