import {
  createRoutingHeaderValidator,
  type RoutingHeaderValidator,
} from '../../broker/schemas/routing-header-validator.js';
import { currentEncryptionKey } from '../../broker/registry/model.js';
import type { EnvelopeFormat } from '../format.js';
import { e2eEnvelope } from './open.js';
import { e2eStoredSignatures } from './stored-signatures.js';
import { parseE2eBody, parseE2eEnvelope } from './wire.js';

let validator: RoutingHeaderValidator | undefined;

/**
 * jose-e2e: the origin seals the notice once for its recipients' keys and
 * signs a cleartext routing header that binds the ciphertext
 * (docs/end-to-end.md). The hub opens nothing: it checks the header, stores
 * the envelope as received and delivers those same bytes to each recipient.
 * Its signing keys are the agency's JOSE keys (`keys`, listed under `jose`
 * in the key history, so keyMaterial claims none of its own).
 */
export const joseE2eFormat = {
  name: 'jose-e2e',
  deliveredAsReceived: true,
  opener(deps) {
    validator ??= createRoutingHeaderValidator();
    return e2eEnvelope(validator, deps.maxEnvelopeBytes);
  },
  agencyKeysField: 'keys',
  keyMaterial: () => undefined,
  storedSignatures: e2eStoredSignatures,
  deliveryKey(agency, at) {
    const key = currentEncryptionKey(agency.keys, at);
    return key && { kid: key.kid };
  },
  deliverySealer() {
    return {
      // The same bytes for every recipient, labelled with the kid of that recipient's entry in the body.
      async seal(signed, recipients) {
        const body = parseE2eBody(parseE2eEnvelope(signed, signed.length).body, signed.length);
        return recipients.map((r) => {
          const own = new Set(r.agency.keys.map((k) => k.kid));
          const entry = body.recipients.find((e) => own.has(e.kid));
          return entry && { body: signed, kid: entry.kid };
        });
      },
    };
  },
  inboxDelivery: {
    field: 'e2e',
    defect(body) {
      try {
        parseE2eEnvelope(body, body.length);
        return null;
      } catch {
        return 'body is not an end-to-end envelope';
      }
    },
  },
} as const satisfies EnvelopeFormat<'jose-e2e'>;
