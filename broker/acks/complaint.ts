import {
  checkComplaintClaims,
  COMPLAINT_TYP,
  isComplaintReason,
  type ComplaintReason,
  type RecordedComplaint,
} from '../core/complaint.js';
import { LiaisonError } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';
import type { ComplaintLogEntry } from '../log/entry.js';
import { findNoticeEntry } from '../log/notice-lookup.js';
import { deliveredToAgency, ROUTING_WAIT_MS } from '../routing/delivered.js';
import {
  checkSignedTime,
  listStatements,
  openStatement,
  storeAndLog,
  type StatementDeps,
  type StatementKind,
} from './recipient-statement.js';

/**
 * Complaints (issue 23): a recipient's signed statement that a notice it
 * received fails its checks (broker/core/complaint.ts). Kept like read
 * receipts (recipient-statement.ts): the JWS as received, sealed under the
 * notice's data key, in stream ACKS on
 * `complaints.<notice-id>.<agency>`, its entry in LOG (`log.complaint`),
 * Msg-Id `complaint:<notice-id>:<agency>` on both.
 *
 * One complaint per notice and recipient: the same complaint again (a retry)
 * is answered with the first; a different one is refused (`complaint-conflict`)
 * rather than answered with the first as if it were recorded. A recipient
 * that finds several faults names the first and says the rest in `detail`;
 * the log then holds at most one complaint per delivery, so no recipient can
 * flood it about a notice.
 */
export const COMPLAINT_KIND: StatementKind<ComplaintLogEntry> = {
  kind: 'complaint',
  typ: COMPLAINT_TYP,
  what: 'complaint',
  subjectToken: 'complaints',
  signedAt: 'complained_at',
  // A detail of 1000 code points of 4 bytes each, escaped or not, base64url-encoded, with header and signature.
  maxBytes: 12_288,
  isWellFormed: (e) => isComplaintReason(e.reason),
  // The detail is free text about the notice and may quote it: sealed under the notice's data key, so an
  // erasure of the notice shreds its complaints too, and a complaint needs no key of its own to manage.
  sealAs: 'complaint+jws',
};

/** Not a recipient, or no such notice: one answer, so a complaint tells no one which notices exist. */
const notDelivered = () =>
  new LiaisonError('ack-mismatch', { publicDetail: 'no delivery of this notice to this agency is recorded' });

export type ComplaintDeps = StatementDeps;

/**
 * Record a complaint of `agency` (the authenticated caller):
 *  1. the JWS header, signer (the caller's own active signing key), signature
 *     and strict JSON, as read receipts (recipient-statement.ts);
 *  2. the claims: exactly five members, a reason from the closed list, a
 *     bounded detail; `agency` is the caller;
 *  3. the notice is in the log and the router recorded a delivery of it to
 *     this agency (KV `delivered`) that its entry also names;
 *  4. complained_at not in the future (beyond the skew) nor before the notice was received;
 *  5. store (ACKS) then log (LOG): the first complaint stands; the same one
 *     again is idempotent, a different one is `complaint-conflict`.
 */
export async function recordComplaint(deps: ComplaintDeps, agency: string, jws: string): Promise<RecordedComplaint> {
  const { payload, signer } = await openStatement(deps, COMPLAINT_KIND, agency, jws);
  const claims = checkComplaintClaims(payload);
  if (claims.agency !== agency)
    throw new LiaisonError('forbidden', { publicDetail: 'agency must be the complaining agency itself' });

  const notice = await findNoticeEntry(deps.bus, claims.notice_id);
  if (!notice || !notice.recipients.includes(agency)) throw notDelivered();
  if (!(await deliveredToAgency(deps.bus, claims.notice_id, agency, ROUTING_WAIT_MS))) throw notDelivered();

  const now = (deps.now ?? (() => new Date()))();
  checkSignedTime(
    deps,
    now,
    'complained_at',
    claims.complained_at,
    notice.received_at,
    (publicDetail) => new LiaisonError('bad-request', { publicDetail }),
  );

  const sha256 = sha256Hex(jws);
  const recorded = await storeAndLog(
    deps,
    COMPLAINT_KIND,
    jws,
    {
      v: 1,
      kind: 'complaint',
      notice_id: claims.notice_id,
      agency,
      signer_kid: signer.kid,
      sha256,
      reason: claims.reason,
      complained_at: claims.complained_at,
      received_at: now.toISOString(),
    },
    notice.origin.agency,
  );
  const { entry } = recorded;
  if (entry.sha256 !== sha256)
    throw new LiaisonError('complaint-conflict', {
      publicDetail: `this agency's complaint about this notice is at log index ${recorded.log_index}`,
    });
  return {
    notice_id: entry.notice_id,
    agency,
    reason: entry.reason as ComplaintReason,
    log_index: recorded.log_index,
    received_at: entry.received_at,
    duplicate: recorded.duplicate,
  };
}

export interface ListedComplaint {
  agency: string;
  signer_kid: string;
  reason: string;
  complained_at: string;
  received_at: string;
  /** The recipient's complaint, a compact JWS exactly as received: verify it with the recipient's key. */
  complaint: string;
  /** Lower-case hex SHA-256 of `complaint`, as committed in the log entry. */
  sha256: string;
}

/**
 * The complaints about a notice, for its origin agency and for auditors (an
 * agency with the audit role: `audit verify` checks them against the log);
 * anyone else gets the same not-found as none.
 */
export async function listComplaints(
  deps: Pick<StatementDeps, 'bus' | 'storageKeys'>,
  noticeId: string,
  caller: string,
  auditor: boolean,
): Promise<ListedComplaint[]> {
  return (await listStatements(deps, COMPLAINT_KIND, noticeId, caller, auditor)).map(({ entry, jws }) => ({
    agency: entry.agency,
    signer_kid: entry.signer_kid,
    reason: entry.reason,
    complained_at: entry.complained_at,
    received_at: entry.received_at,
    complaint: jws,
    sha256: entry.sha256,
  }));
}
