import type { NoticeLogEntry } from '../log/entry.js';
import type { RegistrySnapshot } from '../registry/model.js';
import { encryptDelivery } from './encrypt.js';
import type { OpenPgpDeliveryPort } from './openpgp-port.js';
import { DELIVERY_HEADERS, type PlannedDelivery } from './plan.js';

/**
 * The bytes of one planned delivery: a JWE (cty naming the origin's format), or
 * an OpenPGP message through the injected port. Undefined when an OpenPGP
 * delivery cannot be made (no port, or no usable OpenPGP encryption key now).
 */
export async function sealPlanned(
  d: PlannedDelivery,
  signed: Uint8Array,
  entry: Pick<NoticeLogEntry, 'notice_id' | 'format'>,
  ctx: { registry: RegistrySnapshot; openpgp?: OpenPgpDeliveryPort | undefined; at: Date },
): Promise<{ body: string; kid: string; headers: Record<string, string> } | undefined> {
  if (d.format !== 'openpgp') return { body: await encryptDelivery(signed, d, entry.notice_id, entry.format), kid: d.kid, headers: {} };
  const agency = ctx.registry.agency(d.agency);
  const sealed = agency && ctx.openpgp ? await ctx.openpgp.seal(agency, signed, { noticeId: entry.notice_id, format: entry.format }, ctx.at) : undefined;
  return sealed && { body: sealed.message, kid: sealed.kid, headers: { [DELIVERY_HEADERS.deliveryFormat]: 'openpgp' } };
}
