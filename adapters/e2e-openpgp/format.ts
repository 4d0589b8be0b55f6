import {
  createRoutingHeaderValidator,
  type RoutingHeaderValidator,
} from '../../broker/schemas/routing-header-validator.js';
import type { EnvelopeFormat } from '../format.js';
import { keyStateAt } from '../../broker/registry/model.js';
import { e2ePgpEnvelope } from './open.js';
import { recordHoldingAny } from './recipient-keys.js';
import { e2ePgpStoredSignatures } from './stored-signatures.js';
import { isArmoredMessage, parseE2ePgpBody, parseE2ePgpEnvelope } from './wire.js';

let validator: RoutingHeaderValidator | undefined;

/**
 * openpgp-e2e: the OpenPGP form of an end-to-end notice (docs/end-to-end.md).
 * The origin signs the notice with its OpenPGP key and encrypts it once for
 * its recipients' OpenPGP certificates, beside an OpenPGP-signed routing
 * header that binds that body; GnuPG reads both. The hub opens nothing: it
 * checks the header, stores the envelope as received and delivers those same
 * bytes to each recipient, in the inbox's `e2e` field as jose-e2e (the header
 * tells the two forms apart). Its keys are the agency's `openpgp_keys`,
 * listed under `openpgp` in the key history, so keyMaterial claims none.
 */
export const openPgpE2eFormat = {
  name: 'openpgp-e2e',
  deliveredAsReceived: true,
  opener(deps) {
    validator ??= createRoutingHeaderValidator();
    return e2ePgpEnvelope(validator, deps);
  },
  agencyKeysField: 'openpgp_keys',
  keyMaterial: () => undefined,
  storedSignatures: e2ePgpStoredSignatures,
  // Plan time: the certificate a delivery would use; the sealer labels it with the one the body names.
  deliveryKey(agency, at) {
    const own = (agency.openpgp_keys ?? []).filter((k) => keyStateAt(k, at) === 'active');
    return own.length ? { kid: own.at(-1)!.kid } : undefined;
  },
  deliverySealer() {
    return {
      // The same bytes for every recipient, labelled with the kid of the certificate its session key is for.
      async seal(signed, recipients, _meta, at) {
        const { keyIds } = parseE2ePgpBody(parseE2ePgpEnvelope(signed, signed.length).body, signed.length);
        return Promise.all(
          recipients.map(async (r) => {
            const kid = await recordHoldingAny(r.agency, keyIds, at);
            return kid === undefined ? undefined : { body: signed, kid };
          }),
        );
      },
    };
  },
  inboxDelivery: {
    field: 'e2e',
    defect(body) {
      try {
        return isArmoredMessage(parseE2ePgpEnvelope(body, body.length).header)
          ? null
          : 'body is not an OpenPGP end-to-end envelope';
      } catch {
        return 'body is not an end-to-end envelope';
      }
    },
  },
} as const satisfies EnvelopeFormat<'openpgp-e2e'>;
