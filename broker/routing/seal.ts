import { DEFAULT_DELIVERY_FORMAT, ENVELOPE_FORMATS, type EnvelopeFormatName } from '../formats/registry.js';
import type { FormatDeliverySealer, SealerDeps } from '../formats/registry.js';
import type { NoticeLogEntry } from '../log/entry.js';
import type { RegistrySnapshot } from '../registry/model.js';
import { DELIVERY_HEADERS, type PlannedDelivery } from './plan.js';

/** One delivery as published: `body` the message's bytes (a JWE as JSON text or an armored OpenPGP message, ASCII either way). */
export type Sealed = { body: Uint8Array; kid: string; headers: Record<string, string> };

/** The delivery sealer of every registered format the broker can seal (built once per router). */
export type DeliverySealers = ReadonlyMap<EnvelopeFormatName, FormatDeliverySealer>;

export function createDeliverySealers(deps: SealerDeps): DeliverySealers {
  const sealers = new Map<EnvelopeFormatName, FormatDeliverySealer>();
  for (const f of ENVELOPE_FORMATS) {
    const s = f.deliverySealer(deps);
    if (s) sealers.set(f.name, s);
  }
  return sealers;
}

/**
 * Every planned delivery of one notice, in plan order: each format's deliveries
 * in one call to that format's sealer (JOSE: a worker thread), the formats
 * concurrently. Undefined for a delivery that cannot be made now: no sealer for
 * its format (no broker OpenPGP key), or no usable key of the recipient's.
 */
export async function sealAll(
  plan: readonly PlannedDelivery[],
  signed: Uint8Array,
  entry: Pick<NoticeLogEntry, 'notice_id' | 'format'>,
  ctx: { registry: RegistrySnapshot; at: Date; sealers: DeliverySealers },
): Promise<(Sealed | undefined)[]> {
  const out: (Sealed | undefined)[] = plan.map(() => undefined);
  const byFormat = new Map<EnvelopeFormatName, number[]>();
  plan.forEach((d, i) => byFormat.set(d.format, [...(byFormat.get(d.format) ?? []), i]));
  await Promise.all(
    [...byFormat].map(async ([format, positions]) => {
      const sealer = ctx.sealers.get(format);
      if (!sealer) return;
      const recipients = positions.flatMap((i) => {
        const agency = ctx.registry.agency(plan[i]!.agency);
        return agency ? [{ ...plan[i]!, agency, i }] : [];
      });
      const sealed = await sealer.seal(signed, recipients, { noticeId: entry.notice_id, format: entry.format }, ctx.at);
      if (sealed.length !== recipients.length) throw new Error('the sealer returned the wrong number of deliveries');
      const headers: Record<string, string> =
        format === DEFAULT_DELIVERY_FORMAT ? {} : { [DELIVERY_HEADERS.deliveryFormat]: format };
      sealed.forEach((s, j) => (out[recipients[j]!.i] = s && { body: s.body, kid: s.kid, headers }));
    }),
  );
  return out;
}
