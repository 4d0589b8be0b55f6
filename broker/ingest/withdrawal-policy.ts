/**
 * Step 6 for notices of type `withdrawal` (schemas/notice/withdrawal/1.0):
 * the origin withdraws or corrects one of its own earlier notices. Pure: the
 * superseded notice's log entry is looked up beforehand
 * (broker/ingest/withdrawal-lookup.ts) and passed in.
 *
 * Rules (docs/routing.md, "Withdrawal and correction"):
 * - the sender passes the same checks as for any notice (checkSender);
 * - `body.supersedes` is listed in the header's `references` (422 otherwise);
 * - the superseded notice is in the log and its origin agency is the sender;
 *   an unknown id and another agency's notice are refused alike (403
 *   policy-denied, same words: no probing for other agencies' notice ids);
 * - it is not itself a withdrawal (supersede the original instead);
 * - same operation as the superseded notice;
 * - TLP at least as strict as the superseded notice's;
 * - recipients = the superseded notice's recipients, from its log entry,
 *   whatever the withdrawal's own addressees say (they must only be
 *   schema-valid). The router re-checks them against the live registry as for
 *   any notice.
 */
import { LiaisonError } from '../core/errors.js';
import type { NoticeLogEntry } from '../log/entry.js';
import type { RegistrySnapshot } from '../registry/model.js';
import type { NoticeHeader, Tlp } from './notice.js';
import { checkSender, type PolicyDecision } from './policy.js';

export const WITHDRAWAL_TYPE = 'withdrawal';

export interface WithdrawalBody {
  action: 'withdraw' | 'correct';
  supersedes: string;
  reason: string;
  correction?: string;
}

/** TLP 2.0 from least to most restrictive. */
export const TLP_ORDER: readonly Tlp[] = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'];
const rank = (tlp: string) => TLP_ORDER.indexOf(tlp as Tlp);

const deny = (reason: string) => new LiaisonError('policy-denied', { publicDetail: reason });

/** Public wording for "unknown" and "someone else's": the same, on purpose. */
export const NOT_YOURS = 'the superseded notice is not a notice of the sending agency in the log';

export const isWithdrawal = (notice: Pick<NoticeHeader, 'type'>) => notice.type === WITHDRAWAL_TYPE;

/** The id a schema-valid withdrawal supersedes; it must also be listed in `references`. */
export function supersededId(notice: NoticeHeader): string {
  const id = (notice.body as unknown as WithdrawalBody).supersedes;
  if (!(notice.references ?? []).includes(id)) {
    throw new LiaisonError('schema-invalid', { errors: [{ path: '/references', message: 'must contain the id in body.supersedes' }] });
  }
  return id;
}

/** Pure: who receives this withdrawal, given the superseded notice's log entry (undefined when it is not in the log). */
export function evaluateWithdrawal(
  notice: NoticeHeader,
  signerAgencyId: string,
  registry: RegistrySnapshot,
  now: Date,
  original: NoticeLogEntry | undefined,
): PolicyDecision {
  const { signer } = checkSender(notice, signerAgencyId, registry, now);
  const id = supersededId(notice);
  if (original === undefined || original.kind !== 'notice' || original.notice_id !== id || original.origin.agency !== signer.id) {
    throw deny(NOT_YOURS);
  }
  if (original.type === WITHDRAWAL_TYPE) throw deny('a withdrawal cannot itself be superseded; supersede the original notice');
  if (original.operation !== notice.operation) throw deny('a withdrawal is sent in the operation of the notice it supersedes');
  if (rank(notice.tlp) < rank(original.tlp)) throw deny(`a withdrawal is at least as restricted as the notice it supersedes (TLP:${original.tlp})`);
  if (original.recipients.length === 0) throw deny('the notice has no recipient');
  return { recipients: [...new Set(original.recipients)].sort() };
}

/**
 * The I/O-bound wrapper the pipeline calls: sender checks first (so a
 * non-member causes no lookup), then the lookup, then the pure rules.
 */
export async function evaluateWithdrawalPolicy(
  notice: NoticeHeader,
  signerAgencyId: string,
  registry: RegistrySnapshot,
  now: Date,
  find: (noticeId: string) => Promise<NoticeLogEntry | undefined>,
): Promise<PolicyDecision> {
  checkSender(notice, signerAgencyId, registry, now);
  const original = await find(supersededId(notice));
  return evaluateWithdrawal(notice, signerAgencyId, registry, now, original);
}
