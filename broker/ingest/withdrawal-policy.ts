/**
 * Step 6 for notices of type `withdrawal` (schemas/notice/withdrawal/1.0):
 * the origin withdraws or corrects one of its own earlier notices. Pure: the
 * superseded notice's log entry and whom it was delivered to are looked up
 * beforehand (an OriginalLookup: broker/log/notice-lookup.ts and
 * broker/routing/delivered.ts) and passed in.
 *
 * Rules (docs/routing.md, "Withdrawal and correction"):
 * - the sender passes the checks for any notice (checkSender), except that
 *   the operation may have ended: a notice is withdrawn when it turns out
 *   wrong, also after the operation;
 * - `body.supersedes` is listed in the header's `references` (422 otherwise);
 * - the superseded notice is in the log and its origin agency is the sender;
 *   an unknown id and another agency's notice are refused alike (403
 *   policy-denied, same words: no probing for other agencies' notice ids);
 * - it is not itself a withdrawal (supersede the original instead);
 * - same operation as the superseded notice;
 * - TLP at least as strict as the superseded notice's;
 * - recipients = the agencies the router delivered the superseded notice to
 *   (KV `delivered`, broker/routing/delivered.ts), within the ones its log
 *   entry names, whatever the withdrawal's own addressees say and whether or
 *   not they are still members: never an agency that did not get the
 *   original. Of those, the ones the router can deliver to now (in the
 *   registry, `subscribe` role, an encryption key: planDeliveries, the same
 *   rules the router applies), so the receipt names exactly who gets it.
 */
import { LiaisonError } from '../core/errors.js';
import type { NoticeLogEntry } from '../log/entry.js';
import type { RegistrySnapshot } from '../registry/model.js';
import { planDeliveries } from '../routing/plan.js';
import { atLeastAsStrict } from '../core/tlp.js';
import { WITHDRAWAL_TYPE, type NoticeHeader } from '../core/notice.js';
import type { RoutingHeader } from '../schemas/routing-header-validator.js';
import { checkMode, checkSender, type PolicyDecision } from './policy.js';

export { WITHDRAWAL_TYPE };

/** What a withdrawal needs to know of the notice it supersedes; the gateway wires it to the log and the router's record. */
export interface OriginalLookup {
  /** The notice's own log entry; undefined when the log holds none. */
  find(noticeId: string): Promise<NoticeLogEntry | undefined>;
  /** Whom the router delivered it to; undefined when no record can come any more. */
  delivered(original: NoticeLogEntry): Promise<string[] | undefined>;
}

export interface WithdrawalBody {
  action: 'withdraw' | 'correct';
  supersedes: string;
  reason: string;
  correction?: string;
}

const deny = (reason: string) => new LiaisonError('policy-denied', { publicDetail: reason });

/** Public wording for "unknown" and "someone else's": the same, on purpose. */
export const NOT_YOURS = 'the superseded notice is not a notice of the sending agency in the log';

export const isWithdrawal = (notice: Pick<NoticeHeader, 'type'>) => notice.type === WITHDRAWAL_TYPE;

/**
 * The id a schema-valid withdrawal supersedes; it must also be listed in
 * `references`. An end-to-end withdrawal's routing header (it has
 * body_sha256, and no body) names it in `supersedes`, required there by
 * its schema; its recipients check the sealed body agrees.
 */
export function supersededId(notice: NoticeHeader | RoutingHeader): string {
  if ('body_sha256' in notice) {
    if (typeof notice.supersedes !== 'string')
      throw new LiaisonError('schema-invalid', {
        errors: [{ path: '/supersedes', message: 'a withdrawal names the notice it supersedes' }],
      });
    return notice.supersedes;
  }
  const id = (notice.body as unknown as WithdrawalBody).supersedes;
  if (!(notice.references ?? []).includes(id)) {
    throw new LiaisonError('schema-invalid', {
      errors: [{ path: '/references', message: 'must contain the id in body.supersedes' }],
    });
  }
  return id;
}

/** Pure: the sender and superseded-notice rules; returns the superseded notice's entry. */
export function checkWithdrawal(
  notice: NoticeHeader | RoutingHeader,
  signerAgencyId: string,
  registry: RegistrySnapshot,
  now: Date,
  original: NoticeLogEntry | undefined,
): NoticeLogEntry {
  const { signer } = checkSender(notice, signerAgencyId, registry, now, { endedOperation: true });
  const id = supersededId(notice);
  if (
    original === undefined ||
    original.kind !== 'notice' ||
    original.notice_id !== id ||
    original.origin.agency !== signer.id
  ) {
    throw deny(NOT_YOURS);
  }
  if (original.type === WITHDRAWAL_TYPE)
    throw deny('a withdrawal cannot itself be superseded; supersede the original notice');
  if (original.operation !== notice.operation)
    throw deny('a withdrawal is sent in the operation of the notice it supersedes');
  if (!atLeastAsStrict(notice.tlp, original.tlp))
    throw deny(`a withdrawal is at least as restricted as the notice it supersedes (TLP:${original.tlp})`);
  return original;
}

/**
 * Pure: who receives the withdrawal of `original`, given whom the router
 * delivered the original to (undefined: no record). Only agencies in both the
 * record and the original's log entry, so neither source alone can widen it.
 */
export function withdrawalRecipients(
  original: NoticeLogEntry,
  delivered: readonly string[] | undefined,
  registry: RegistrySnapshot,
  now: Date,
): string[] {
  if (delivered === undefined) throw deny('the broker holds no record of who received the superseded notice');
  const received = new Set(delivered);
  const recipients = original.recipients.filter((a) => received.has(a));
  if (recipients.length === 0) throw deny('the notice has no recipient');
  const plan = planDeliveries({ ...original, type: WITHDRAWAL_TYPE, recipients }, registry, now);
  if (plan.deliveries.length === 0) throw deny('no agency that received the notice can receive now');
  return plan.deliveries.map((d) => d.agency).sort();
}

/** Pure: who receives this withdrawal, given the superseded notice's log entry (undefined when it is not in the log) and whom it was delivered to. */
export function evaluateWithdrawal(
  notice: NoticeHeader | RoutingHeader,
  signerAgencyId: string,
  registry: RegistrySnapshot,
  now: Date,
  original: NoticeLogEntry | undefined,
  delivered: readonly string[] | undefined,
): PolicyDecision {
  const checked = checkWithdrawal(notice, signerAgencyId, registry, now, original);
  return { recipients: withdrawalRecipients(checked, delivered, registry, now) };
}

/**
 * The I/O-bound wrapper the pipeline calls: sender checks first (so a
 * non-member causes no lookup), the envelope mode (end to end exactly when
 * the operation is, as for any notice), then the log lookup and its rules, and only
 * for the sender's own notice the record of whom it was delivered to (which
 * may wait for the original to be routed).
 */
export async function evaluateWithdrawalPolicy(
  notice: NoticeHeader | RoutingHeader,
  signerAgencyId: string,
  registry: RegistrySnapshot,
  now: Date,
  lookup: OriginalLookup,
  mode: { endToEnd?: boolean } = {},
): Promise<PolicyDecision> {
  const { op } = checkSender(notice, signerAgencyId, registry, now, { endedOperation: true });
  checkMode(op, mode.endToEnd === true);
  const original = checkWithdrawal(notice, signerAgencyId, registry, now, await lookup.find(supersededId(notice)));
  return { recipients: withdrawalRecipients(original, await lookup.delivered(original), registry, now) };
}
