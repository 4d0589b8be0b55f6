/**
 * The envelope formats the broker knows, and the one way the rest of the broker
 * reaches them. Adding a format: implement EnvelopeFormat (adapters/format.ts)
 * in adapters/<name>/format.ts and add it to ENVELOPE_FORMATS below.
 */
import type { DeliveryKey, EnvelopeFormat } from '../../adapters/format.js';
import { joseE2eFormat } from '../../adapters/e2e-jose/format.js';
import { openPgpE2eFormat } from '../../adapters/e2e-openpgp/format.js';
import { joseFormat } from '../../adapters/jose/format.js';
import { openPgpFormat } from '../../adapters/openpgp/format.js';
import { LiaisonError } from '../core/errors.js';
import type { Agency } from '../registry/model.js';

/** The contract, for the broker's side of the seam (routing, audit): it imports formats from here only. */
export type {
  FormatDeliverySealer,
  HistoricalAgencyKey,
  OriginProblemCode,
  SealerDeps,
  StoredSignatureVerifier,
} from '../../adapters/format.js';

export const ENVELOPE_FORMATS = [joseFormat, openPgpFormat, joseE2eFormat, openPgpE2eFormat] as const;

/** The name of a registered format, as log entries, key records and agency records write it. */
export type EnvelopeFormatName = (typeof ENVELOPE_FORMATS)[number]['name'];

/** The format of deliveries to an agency whose record names none, and the fallback when it has no key for its own. */
export const DEFAULT_DELIVERY_FORMAT: EnvelopeFormatName = 'jose';

export function isEnvelopeFormatName(name: unknown): name is EnvelopeFormatName {
  return ENVELOPE_FORMATS.some((f) => f.name === name);
}

/** The registered format of that name; anything else is a `format-unknown` error (never treated as a default). */
export function envelopeFormat(name: unknown): EnvelopeFormat<EnvelopeFormatName> {
  const found = ENVELOPE_FORMATS.find((f) => f.name === name);
  if (!found) throw unknownFormat(name);
  return found;
}

/**
 * The format of a stored delivery, from its `Liaison-Delivery-Format` header
 * (`''` when absent: the default format, which the router does not label);
 * undefined when the header names a format that is not registered.
 */
export function storedDeliveryFormat(header: string): EnvelopeFormat<EnvelopeFormatName> | undefined {
  const name = header === '' ? DEFAULT_DELIVERY_FORMAT : header;
  return isEnvelopeFormatName(name) ? envelopeFormat(name) : undefined;
}

export function unknownFormat(name: unknown): LiaisonError {
  return new LiaisonError('format-unknown', {
    detail: `envelope format ${JSON.stringify(name) ?? String(name)} is not registered (known: ${ENVELOPE_FORMATS.map((f) => f.name).join(', ')})`,
  });
}

/**
 * What a delivery to this agency is sealed to at `at`: a key of its
 * `delivery_format` when it has one now, else of the default format; undefined
 * when it has neither, or when its `delivery_format` is not registered. Ingest
 * (the receipt's recipients) and the router ask the same question here, so a
 * receipt never names an agency the router then skips for want of a key.
 */
export function deliveryKeyAt(agency: Agency, at: Date): { format: EnvelopeFormatName; key: DeliveryKey } | undefined {
  const own = agency.delivery_format ?? DEFAULT_DELIVERY_FORMAT;
  if (!isEnvelopeFormatName(own)) return undefined;
  for (const format of own === DEFAULT_DELIVERY_FORMAT ? [own] : [own, DEFAULT_DELIVERY_FORMAT]) {
    const key = envelopeFormat(format).deliveryKey(agency, at);
    if (key) return { format, key };
  }
  return undefined;
}
