import type { EnvelopeFormat } from '../format.js';
import { currentOpenPgpRecipient } from './recipients.js';
import { createOpenPgpSignerResolver } from './signers.js';
import { keyStateAt } from '../../broker/registry/model.js';
import { createOpenPgpEnvelope } from './index.js';
import { createOpenPgpDeliverySealer } from './seal-delivery.js';
import { openPgpStoredSignatures } from './stored-signatures.js';

const ascii = new TextEncoder();
const ARMORED = '-----BEGIN PGP MESSAGE-----';

/**
 * OpenPGP: an armored message encrypted to the broker's OpenPGP key, holding
 * the agency's signed message; certificates in an agency's `openpgp_keys`;
 * deliveries (for agencies with `delivery_format: 'openpgp'`) signed by the
 * broker's OpenPGP key and encrypted to the agency's certificate, a notice's
 * signature and encryption made once for all its OpenPGP recipients. Without a
 * broker OpenPGP key the broker neither opens nor seals this format.
 */
export const openPgpFormat = {
  name: 'openpgp',
  opener(deps) {
    if (!deps.openPgpDecryptionKeys?.length) return undefined;
    return createOpenPgpEnvelope({
      decryptionKeys: deps.openPgpDecryptionKeys,
      resolveSigner: createOpenPgpSignerResolver(deps.registry, deps.now),
      limits: { maxArmorBytes: deps.maxEnvelopeBytes, maxPlaintextBytes: deps.maxEnvelopeBytes },
      ...(deps.now ? { now: deps.now } : {}),
    });
  },
  agencyKeysField: 'openpgp_keys',
  keyMaterial(record) {
    return typeof record.armored === 'string'
      ? { fields: { armored: record.armored }, id: `pgp:${record.armored}` }
      : undefined;
  },
  storedSignatures: openPgpStoredSignatures,
  deliveryKey(agency, at) {
    // The certificate's encryption key is checked when sealing (currentOpenPgpRecipient).
    const active = (agency.openpgp_keys ?? []).filter((k) => keyStateAt(k, at) === 'active');
    return active.length ? { kid: active.at(-1)!.kid } : undefined;
  },
  deliverySealer(deps) {
    if (!deps.openPgpSigningKey) return undefined;
    const sealer = createOpenPgpDeliverySealer(deps.openPgpSigningKey);
    return {
      async seal(signed, recipients, meta, at) {
        const to = await Promise.all(recipients.map((r) => currentOpenPgpRecipient(r.agency, at)));
        const usable = to.filter((x) => x !== undefined);
        // Signed and encrypted once for all of them (seal-delivery.ts); one message each.
        const messages = await sealer.sealAll(signed, {
          keys: usable.map((x) => x.key),
          noticeId: meta.noticeId,
          format: meta.format,
        });
        let next = 0;
        return to.map((x) => x && { body: ascii.encode(messages[next++]), kid: x.kid });
      },
    };
  },
  inboxDelivery: {
    field: 'openpgp',
    defect: (body) =>
      Buffer.from(body.subarray(0, Math.min(body.length, ARMORED.length))).toString('latin1') === ARMORED
        ? null
        : 'body is not an armored OpenPGP message',
  },
} as const satisfies EnvelopeFormat<'openpgp'>;
