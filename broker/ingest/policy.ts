import { LiaisonError } from '../core/errors.js';
import { COUNTRY } from '../core/ids.js';
import { deliveryKeyAt } from '../formats/registry.js';
import { operationActiveAt, type Agency, type Operation, type RegistrySnapshot } from '../registry/model.js';
import type { Tlp } from '../core/tlp.js';
import type { NoticeHeader } from '../core/notice.js';

export interface PolicyDecision {
  /** The agencies this notice will be delivered to, sorted. */
  recipients: string[];
}

const deny = (reason: string) => new LiaisonError('policy-denied', { publicDetail: reason });

/** Public wording for "no such operation" and "not yours", whatever its state: the same, on purpose. */
export const NOT_A_MEMBER = 'the signing agency is not a member of the operation, or there is no such operation';

/** TLP 2.0 at routing: RED and AMBER+STRICT only to agencies named one by one. */
export const namedOnly = (tlp: Tlp) => tlp === 'RED' || tlp === 'AMBER+STRICT';

/**
 * Step 6: who may send this, and to whom. Origin = the signer's agency and
 * country; the operation exists, is active, and counts the signer as a member;
 * every addressee is a receiving member (subscribe role, a key to seal to);
 * TLP rules hold; the envelope is end to end exactly when the operation is
 * (said to members only). Returns the expanded recipients (never the origin
 * itself).
 */
export function evaluatePolicy(
  notice: NoticeHeader,
  signerAgencyId: string,
  registry: RegistrySnapshot,
  now: Date,
  mode: { endToEnd?: boolean } = {},
): PolicyDecision {
  const { signer, op } = checkSender(notice, signerAgencyId, registry, now);
  checkMode(op, mode.endToEnd === true);

  const members: Agency[] = op.members
    .map((id) => registry.agency(id))
    // Receiving = the subscribe role and a key to seal to now (the router's own test), so the receipt names exactly who gets it.
    .filter(
      (a): a is Agency =>
        a !== undefined && a.id !== signer.id && a.roles.includes('subscribe') && deliveryKeyAt(a, now) !== undefined,
    );

  const recipients = new Set<string>();
  const addressees = notice.addressees;
  if (addressees.includes('*')) {
    if (addressees.length !== 1) throw deny('"*" cannot be combined with other addressees');
    if (namedOnly(notice.tlp)) throw deny(`TLP:${notice.tlp} goes only to agencies named one by one, never to "*"`);
    for (const a of members) recipients.add(a.id);
  } else {
    for (const addressee of addressees) {
      if (COUNTRY.test(addressee)) {
        if (namedOnly(notice.tlp)) throw deny(`TLP:${notice.tlp} goes only to named agencies, not to a country`);
        const inCountry = members.filter((a) => a.country === addressee);
        if (inCountry.length === 0) throw deny('an addressee country has no receiving member in the operation');
        for (const a of inCountry) recipients.add(a.id);
      } else {
        const a = members.find((m) => m.id === addressee);
        if (!a) throw deny('an addressee agency is not a receiving member of the operation');
        recipients.add(a.id);
      }
    }
  }
  if (recipients.size === 0) throw deny('the notice has no recipient');
  return { recipients: [...recipients].sort() };
}

/**
 * The envelope is end to end exactly when the operation is, for every notice
 * type (withdrawals too, so no correction text reaches the hub of an
 * end-to-end operation). Call after checkSender: said to members only.
 */
export function checkMode(op: Operation, endToEnd: boolean): void {
  if ((op.end_to_end === true) !== endToEnd)
    throw endToEnd
      ? new LiaisonError('operation-not-end-to-end', {
          publicDetail: 'this operation is hub-readable: seal the notice for the broker',
        })
      : new LiaisonError('operation-end-to-end', {
          publicDetail: "this operation is end to end: seal the notice for its recipients' keys",
        });
}

/**
 * The sender half of step 6, shared by every notice type (withdrawals too,
 * broker/ingest/withdrawal-policy.ts): origin = the signer's agency and
 * country, the signer may publish, the operation exists and counts the signer
 * as a member (one refusal for both), and is active (said to members only;
 * not required with `endedOperation`: withdrawals).
 */
export function checkSender(
  notice: Pick<NoticeHeader, 'origin' | 'operation'>,
  signerAgencyId: string,
  registry: RegistrySnapshot,
  now: Date,
  opts: { endedOperation?: boolean } = {},
): { signer: Agency; op: Operation } {
  const signer = registry.agency(signerAgencyId);
  if (!signer) throw deny('the signing agency is not in the registry');
  if (notice.origin.agency !== signer.id) throw deny('origin.agency is not the agency that signed the notice');
  if (notice.origin.country !== signer.country) throw deny("origin.country is not the signing agency's country");
  if (!signer.roles.includes('publish')) throw deny('the signing agency may not publish');

  // Membership first: to a non-member, a missing, an inactive and a running operation read the same (no probing for ids).
  const op = registry.operation(notice.operation);
  if (!op || !op.members.includes(signer.id)) throw deny(NOT_A_MEMBER);
  if (!opts.endedOperation && !operationActiveAt(op, now)) throw deny('the operation is not active');
  return { signer, op };
}
