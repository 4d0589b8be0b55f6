import type { Agency } from '../registry/model.js';

/**
 * OpenPGP deliveries, as the router sees them: injected by the composition root
 * (broker/gateway.ts, over adapters/openpgp/seal-delivery.ts), so routing never
 * imports an adapter. `seal` signs with the broker's OpenPGP key and encrypts to
 * the agency's current OpenPGP certificate; undefined when the agency has no
 * usable OpenPGP encryption key at `at`.
 */
export interface OpenPgpDeliveryPort {
  seal(agency: Agency, signed: Uint8Array, meta: { noticeId: string; format: 'jose' | 'openpgp' }, at: Date): Promise<{ kid: string; message: string } | undefined>;
}
