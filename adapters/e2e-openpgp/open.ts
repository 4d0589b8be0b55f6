import { readMessage } from 'openpgp';
import type { EnvelopeAdapter, OpenedEnvelope } from '../../broker/core/envelope.js';
import { LiaisonError } from '../../broker/core/errors.js';
import type { RoutingHeaderValidator } from '../../broker/schemas/routing-header-validator.js';
import { checkRoutingHeader } from '../e2e-jose/open.js';
import type { OpenerDeps } from '../format.js';
import { strictConfig } from '../openpgp/decrypt-message.js';
import { createOpenPgpSignerResolver } from '../openpgp/signers.js';
import { verifyMessage } from '../openpgp/verify-message.js';
import { encryptionKeyOwners } from './recipient-keys.js';
import { E2E_PGP_MEDIA_TYPE, parseE2ePgpBody, parseE2ePgpEnvelope, parseHeaderMessage } from './wire.js';

/**
 * Ingest's side of openpgp-e2e: everything but the content, which it cannot
 * open. The header's signature (one signature, by the origin's registered,
 * active OpenPGP signing certificate: the hub-readable OpenPGP rules of
 * adapters/openpgp/verify-message.ts), the routing header's schema and its
 * binding of this body; the body's packet shape; and which registered
 * encryption (sub)keys its session keys are for. A session key for a key no
 * registered agency holds as a current encryption key is `recipients-mismatch`;
 * which agencies the rest belong to is checked against the recipients after
 * the sharing rules (broker/ingest/e2e-recipients.ts).
 */
export function e2ePgpEnvelope(validate: RoutingHeaderValidator, deps: OpenerDeps): EnvelopeAdapter {
  const now = deps.now ?? (() => new Date());
  const resolveSigner = createOpenPgpSignerResolver(deps.registry, now);
  const cfg = strictConfig({ maxPlaintextBytes: deps.maxEnvelopeBytes });
  return {
    format: 'openpgp-e2e',
    mediaTypes: [E2E_PGP_MEDIA_TYPE],
    async open(text): Promise<OpenedEnvelope> {
      const env = parseE2ePgpEnvelope(text, deps.maxEnvelopeBytes);
      const binary = parseHeaderMessage(env.header, deps.maxEnvelopeBytes);
      let message;
      try {
        message = await readMessage({ binaryMessage: binary, config: cfg });
      } catch (e) {
        throw new LiaisonError('envelope-malformed', { publicDetail: 'the header cannot be parsed', cause: e });
      }
      const at = now();
      const { payload, signer } = await verifyMessage(message, resolveSigner, at, cfg);
      checkRoutingHeader(payload, env.body, validate);
      const { keyIds } = parseE2ePgpBody(env.body, deps.maxEnvelopeBytes);
      const owners = await encryptionKeyOwners(deps.registry().agencies(), keyIds, at);
      const sealedFor = owners.map((owner, i) => {
        if (!owner)
          throw new LiaisonError('recipients-mismatch', {
            publicDetail: `key id ${keyIds[i]} is not a current OpenPGP encryption key of a registered agency`,
          });
        return owner.kid;
      });
      return {
        format: 'openpgp-e2e',
        signed: new TextEncoder().encode(text),
        payload,
        signer: { kid: signer.kid, agencyId: signer.agencyId },
        sealedFor,
      };
    },
  };
}
