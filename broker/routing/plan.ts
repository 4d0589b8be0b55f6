/**
 * The pure half of routing: from a logged notice entry and the registry, the
 * deliveries to write (who, on which subject, to which key) and the recipients
 * that cannot be served, with the reason. No NATS, no crypto: unit-tested directly.
 */
import { subjectToken } from '../core/ids.js';
import { WITHDRAWAL_TYPE } from '../core/notice.js';
import type { NoticeLogEntry } from '../log/entry.js';
import {
  DEFAULT_DELIVERY_FORMAT,
  deliveryKeyAt,
  envelopeFormat,
  isEnvelopeFormatName,
  type EnvelopeFormatName,
} from '../formats/registry.js';
import type { RegistryJwk, RegistrySnapshot } from '../registry/model.js';

interface PlannedBase {
  agency: string;
  /** deliveries.<agency>.<operation>.<origin-country> */
  subject: string;
  /** JetStream Msg-Id: `<notice-id>:<agency>`, so a re-run of the router writes nothing twice. */
  msgId: string;
  /** The recipient's current encryption key id (JWK kid; for OpenPGP, an active certificate's fingerprint). */
  kid: string;
}

/**
 * A delivery in the agency's `delivery_format` when it has a key for it, else
 * in the default format (a JWE to the recipient's JWK). The key is the format's
 * choice (EnvelopeFormat.deliveryKey); an OpenPGP certificate's encryption key
 * is checked when sealing.
 */
export type PlannedDelivery = PlannedBase & { format: EnvelopeFormatName; jwk?: RegistryJwk };

/** `format-unknown`: the agency's record names a delivery format that is not registered. */
export type SkipReason =
  'agency-unknown' | 'not-subscriber' | 'not-member' | 'is-origin' | 'no-encryption-key' | 'format-unknown';

export interface DeliveryPlan {
  deliveries: PlannedDelivery[];
  skipped: { agency: string; reason: SkipReason }[];
}

export const deliverySubject = (agency: string, operation: string, originCountry: string) =>
  `deliveries.${subjectToken(agency, 'agency')}.${subjectToken(operation, 'operation')}.${subjectToken(originCountry, 'origin.country')}`;

export const deliveryMsgId = (noticeId: string, agency: string) => `${noticeId}:${agency}`;

export { currentEncryptionKey } from '../registry/model.js';

/**
 * One delivery per recipient named in the log entry (recipients were expanded
 * under the TLP rules at ingest). Each is checked again against the registry as
 * it is now: an agency removed from the operation, stripped of the subscribe
 * role or without a usable encryption key gets nothing, and the origin never
 * gets its own notice back.
 *
 * A withdrawal is the exception to membership: its recipients are the
 * agencies that were delivered the original (chosen at ingest from the KV
 * `delivered` record, never from today's registry), and it reaches them
 * whether or not they are still members and the operation still active.
 */
export function planDeliveries(
  entry: Pick<NoticeLogEntry, 'notice_id' | 'operation' | 'origin' | 'recipients'> &
    Partial<Pick<NoticeLogEntry, 'type' | 'format'>>,
  registry: RegistrySnapshot,
  at: Date,
): DeliveryPlan {
  const plan: DeliveryPlan = { deliveries: [], skipped: [] };
  const op = registry.operation(entry.operation);
  const membersOnly = entry.type !== WITHDRAWAL_TYPE;
  // An end-to-end envelope goes to every recipient as received, in its own format (adapters/format.ts).
  const asReceived =
    entry.format !== undefined && isEnvelopeFormatName(entry.format) && envelopeFormat(entry.format).deliveredAsReceived
      ? envelopeFormat(entry.format)
      : undefined;
  for (const id of [...new Set(entry.recipients)].sort()) {
    const agency = registry.agency(id);
    if (id === entry.origin.agency) plan.skipped.push({ agency: id, reason: 'is-origin' });
    else if (!agency) plan.skipped.push({ agency: id, reason: 'agency-unknown' });
    else if (!agency.roles.includes('subscribe')) plan.skipped.push({ agency: id, reason: 'not-subscriber' });
    else if (membersOnly && (!op || !op.members.includes(id))) plan.skipped.push({ agency: id, reason: 'not-member' });
    else if (!asReceived && !isEnvelopeFormatName(agency.delivery_format ?? DEFAULT_DELIVERY_FORMAT))
      plan.skipped.push({ agency: id, reason: 'format-unknown' });
    else {
      const own = asReceived?.deliveryKey(agency, at);
      const to = asReceived ? own && { format: asReceived.name, key: own } : deliveryKeyAt(agency, at);
      if (!to) plan.skipped.push({ agency: id, reason: 'no-encryption-key' });
      else
        plan.deliveries.push({
          agency: id,
          subject: deliverySubject(id, entry.operation, entry.origin.country),
          msgId: deliveryMsgId(entry.notice_id, id),
          kid: to.key.kid,
          ...(to.key.jwk ? { jwk: to.key.jwk } : {}),
          format: to.format,
        });
    }
  }
  return plan;
}

/** NATS headers of a delivery: labels an agency filters on, never content. */
export const DELIVERY_HEADERS = {
  noticeId: 'Liaison-Notice-Id',
  origin: 'Liaison-Origin',
  originCountry: 'Liaison-Origin-Country',
  operation: 'Liaison-Operation',
  type: 'Liaison-Type',
  tlp: 'Liaison-Tlp',
  logIndex: 'Liaison-Log-Index',
  format: 'Liaison-Format',
  kid: 'Liaison-Recipient-Kid',
  receivedAt: 'Liaison-Received-At',
  /** The delivery's format when it is not the default (`openpgp` on an armored OpenPGP message); absent on a JWE. */
  deliveryFormat: 'Liaison-Delivery-Format',
} as const;

export function deliveryHeaders(
  entry: Pick<NoticeLogEntry, 'notice_id' | 'origin' | 'operation' | 'type' | 'tlp' | 'format' | 'received_at'>,
  logIndex: number,
  kid: string,
): Record<string, string> {
  return {
    [DELIVERY_HEADERS.noticeId]: entry.notice_id,
    [DELIVERY_HEADERS.origin]: entry.origin.agency,
    [DELIVERY_HEADERS.originCountry]: entry.origin.country,
    [DELIVERY_HEADERS.operation]: entry.operation,
    [DELIVERY_HEADERS.type]: entry.type,
    [DELIVERY_HEADERS.tlp]: entry.tlp,
    [DELIVERY_HEADERS.logIndex]: String(logIndex),
    [DELIVERY_HEADERS.format]: entry.format,
    [DELIVERY_HEADERS.kid]: kid,
    [DELIVERY_HEADERS.receivedAt]: entry.received_at,
  };
}
