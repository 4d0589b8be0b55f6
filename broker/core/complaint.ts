import { LiaisonError } from './errors.js';
import { isRfc3339, isSlug, isUuid } from './ids.js';

/**
 * A recipient's complaint about a notice it received (issue 23): the body did
 * not verify, did not validate, did not match its routing header, or could
 * not be opened. The recipient signs these claims (compact JWS, `typ`
 * COMPLAINT_TYP, broker/keys/recipient-jws.ts); the broker checks, stores and
 * logs them (broker/acks/complaint.ts). The contract is
 * schemas/complaint.schema.json; this is its one implementation, shared by the
 * broker, the agency client and the auditor.
 */
export const COMPLAINT_TYP = 'liaison-complaint+jws';

/** The closed list of reasons: a stable code each. */
export const COMPLAINT_REASONS = [
  'body-signature-invalid',
  'body-schema-invalid',
  'header-mismatch',
  'undecryptable',
  'other',
] as const;
export type ComplaintReason = (typeof COMPLAINT_REASONS)[number];

/** The longest detail, in code points (what JSON Schema's maxLength counts): a short note, in any script. */
export const MAX_COMPLAINT_DETAIL = 1000;

/** Exactly these members. */
export interface ComplaintClaims {
  notice_id: string;
  /** The complaining agency (the signer's own). */
  agency: string;
  reason: ComplaintReason;
  /** Free text, kept byte for byte; "" when there is nothing to add. No control characters. */
  detail: string;
  /** RFC 3339, the recipient's clock. */
  complained_at: string;
}

/** What the broker answers when it records a complaint (POST /v1/inbox/complaint: 201, or 200 for the same one again). */
export interface RecordedComplaint {
  notice_id: string;
  agency: string;
  reason: ComplaintReason;
  log_index: number;
  received_at: string;
  /** This same complaint was recorded before: the answer is the first one's. */
  duplicate: boolean;
}

const MEMBERS = 'agency,complained_at,detail,notice_id,reason';
/** C0 and C1 controls and DEL: no line breaks or terminal escapes in a note that ends up in front of people. */
const CONTROL = /\p{Cc}/u;

export const isComplaintReason = (v: unknown): v is ComplaintReason =>
  typeof v === 'string' && (COMPLAINT_REASONS as readonly string[]).includes(v);

const bad = (publicDetail: string) => new LiaisonError('bad-request', { publicDetail });

/** Check the claims as plain data copied out of the payload: exactly the five members, each well formed. */
export function checkComplaintClaims(value: unknown): ComplaintClaims {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('the complaint payload must be a JSON object');
  const v = value as Record<string, unknown>;
  if (Object.keys(v).sort().join(',') !== MEMBERS)
    throw bad('the complaint must hold exactly notice_id, agency, reason, detail and complained_at');
  if (!isUuid(v.notice_id)) throw bad('notice_id must be a lower-case UUID');
  if (!isSlug(v.agency)) throw bad('agency must be an agency id');
  if (!isComplaintReason(v.reason)) throw bad(`reason must be one of ${COMPLAINT_REASONS.join(', ')}`);
  if (typeof v.detail !== 'string') throw bad('detail must be a string');
  if ([...v.detail].length > MAX_COMPLAINT_DETAIL)
    throw bad(`detail must be at most ${MAX_COMPLAINT_DETAIL} characters`);
  if (CONTROL.test(v.detail)) throw bad('detail must hold no control characters');
  if (!isRfc3339(v.complained_at)) throw bad('complained_at must be an RFC 3339 date-time');
  return {
    notice_id: v.notice_id,
    agency: v.agency,
    reason: v.reason,
    detail: v.detail,
    complained_at: v.complained_at,
  };
}
