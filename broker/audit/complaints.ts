/**
 * Complaint signatures against the agency key history, for `liaison audit
 * verify`: each complaint held (its commitment is checked by verify.ts) must
 * be a complaint JWS signed by the key its entry names, a signing key of the
 * complaining agency that was valid when the broker received it
 * (`received_at`; a key rotated or revoked later still verifies it), with
 * claims that say what the entry says. Pure: the evidence comes in as data.
 */

import { checkComplaintClaims, COMPLAINT_TYP } from '../core/complaint.js';
import { verifyRecipientJws } from '../keys/recipient-jws.js';
import { decodeEntry, type ComplaintLogEntry } from '../log/entry.js';
import type { HistoricalAgencyKey } from './key-history.js';
import type { AuditEntry, AuditProblem, HeldComplaint } from './verify.js';

export interface ComplaintCheckResult {
  checked: number;
  problems: (AuditProblem & { code: 'complaint-mismatch' })[];
}

/** The first complaint entry of each notice and agency, by `<notice-id>:<agency>`; what does not decode is auditLog's to report. */
function complaintEntries(entries: readonly AuditEntry[]): Map<string, { index: number; entry: ComplaintLogEntry }> {
  const out = new Map<string, { index: number; entry: ComplaintLogEntry }>();
  entries.forEach((e, index) => {
    try {
      const entry = decodeEntry(e.bytes) as Partial<ComplaintLogEntry>;
      const key = `${String(entry.notice_id)}:${String(entry.agency)}`;
      if (entry.kind === 'complaint' && !out.has(key)) out.set(key, { index, entry: entry as ComplaintLogEntry });
    } catch {
      // auditLog reports malformed entries.
    }
  });
  return out;
}

/** Why a held complaint does not hold up against its entry and the key history, or undefined when it does. */
async function complaintFault(
  c: HeldComplaint,
  entry: ComplaintLogEntry,
  agencyKeys: readonly HistoricalAgencyKey[],
): Promise<string | undefined> {
  const at = new Date(entry.received_at);
  if (Number.isNaN(at.getTime())) return `received_at ${JSON.stringify(entry.received_at)} is not a time`;
  const keys = agencyKeys.filter((k) => k.agency === entry.agency);
  let opened;
  try {
    opened = await verifyRecipientJws(c.jws, keys, at, COMPLAINT_TYP, 'complaint');
  } catch (e) {
    return (e as Error).message;
  }
  if (opened.kid !== entry.signer_kid) return `is signed by ${opened.kid}, its entry names ${entry.signer_kid}`;
  let claims;
  try {
    claims = checkComplaintClaims(opened.payload);
  } catch (e) {
    return `its claims are not a complaint (${(e as { publicDetail?: string }).publicDetail ?? (e as Error).message})`;
  }
  for (const f of ['notice_id', 'agency', 'reason', 'complained_at'] as const)
    if (claims[f] !== entry[f]) return `its ${f} is not the one its entry names`;
  return undefined;
}

/** Verify every complaint held that has an entry (those without one are auditLog's complaint-not-in-log), in log order. */
export async function checkComplaintSignatures(
  entries: readonly AuditEntry[],
  complaints: readonly HeldComplaint[],
  agencyKeys: readonly HistoricalAgencyKey[],
): Promise<ComplaintCheckResult> {
  const byKey = complaintEntries(entries);
  const held = complaints
    .map((c) => ({ c, at: byKey.get(`${c.noticeId}:${c.agency}`) }))
    .filter((h): h is { c: HeldComplaint; at: { index: number; entry: ComplaintLogEntry } } => h.at !== undefined)
    .sort((a, b) => a.at.index - b.at.index);
  const faults = await Promise.all(held.map(({ c, at }) => complaintFault(c, at.entry, agencyKeys)));
  const problems: ComplaintCheckResult['problems'] = [];
  faults.forEach((why, i) => {
    const { c, at } = held[i]!;
    if (why)
      problems.push({
        code: 'complaint-mismatch',
        index: at.index,
        message: `the complaint of ${c.agency} about notice ${c.noticeId} (entry ${at.index}): ${why}`,
      });
  });
  return { checked: held.length, problems };
}
