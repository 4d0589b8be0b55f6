import type { NoticeLogEntry } from '../log/entry.js';
import type { RegistrySnapshot } from '../registry/model.js';
import { encryptDeliveries } from './encrypt.js';
import type { OpenPgpDeliveryPort } from './openpgp-port.js';
import { DELIVERY_HEADERS, type PlannedDelivery } from './plan.js';

/** One delivery as published: `body` the message's bytes (a compact JWE or an armored OpenPGP message, ASCII either way). */
export type Sealed = { body: Uint8Array; kid: string; headers: Record<string, string> };

/**
 * Seals the JOSE deliveries of one notice: one compact JWE per recipient, in order, as the bytes to publish
 * (DeliverySealer on its worker, or encryptDeliveries in process).
 */
export type JoseSealer = (signed: Uint8Array, recipients: { kid: string; jwk: PlannedJose['jwk'] }[], noticeId: string, format: 'jose' | 'openpgp') => Promise<Uint8Array[]>;
type PlannedJose = Extract<PlannedDelivery, { jwk: unknown }>;

const ascii = new TextEncoder();

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
): Promise<Sealed | undefined> {
  if (d.format !== 'openpgp') return { body: (await encryptDeliveries(signed, [d], entry.notice_id, entry.format))[0]!, kid: d.kid, headers: {} };
  const agency = ctx.registry.agency(d.agency);
  const sealed = agency && ctx.openpgp ? await ctx.openpgp.seal(agency, signed, { noticeId: entry.notice_id, format: entry.format }, ctx.at) : undefined;
  return sealed && { body: ascii.encode(sealed.message), kid: sealed.kid, headers: { [DELIVERY_HEADERS.deliveryFormat]: 'openpgp' } };
}

/**
 * Every planned delivery of one notice, in plan order: the JOSE ones in one
 * call to `jose` (a worker thread in the router), the OpenPGP ones through the
 * port, concurrently. Same bytes as sealPlanned one by one.
 */
export async function sealAll(
  plan: readonly PlannedDelivery[],
  signed: Uint8Array,
  entry: Pick<NoticeLogEntry, 'notice_id' | 'format'>,
  ctx: { registry: RegistrySnapshot; openpgp?: OpenPgpDeliveryPort | undefined; at: Date; jose?: JoseSealer | undefined },
): Promise<(Sealed | undefined)[]> {
  const jose = plan.filter((d): d is PlannedJose => d.format !== 'openpgp');
  const [bodies, others] = await Promise.all([
    (ctx.jose ?? encryptDeliveries)(signed, jose.map((d) => ({ kid: d.kid, jwk: d.jwk })), entry.notice_id, entry.format),
    Promise.all(plan.map((d) => (d.format === 'openpgp' ? sealPlanned(d, signed, entry, ctx) : undefined))),
  ]);
  if (bodies.length !== jose.length) throw new Error('the sealer returned the wrong number of deliveries');
  let j = 0;
  return plan.map((d, i) => (d.format === 'openpgp' ? others[i] : { body: bodies[j++]!, kid: d.kid, headers: {} }));
}
