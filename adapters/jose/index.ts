import type { EnvelopeAdapter } from '../../broker/core/envelope.js';
import { decryptJwe } from './decrypt-jwe.js';
import { parseCompactJwe } from './parse-jwe.js';
import { verifyCompactJws } from './verify-jws.js';

/** JOSE envelopes: compact JWE (to the broker) ⊃ compact JWS (by the agency) ⊃ notice JSON. */
export const joseEnvelope: EnvelopeAdapter = {
  format: 'jose',
  mediaTypes: ['application/jose'],
  async open(body, ctx) {
    const jwe = parseCompactJwe(body);
    const plaintext = await decryptJwe(jwe, (kid) => ctx.decryptionKey(kid));
    const { signed, payload, signer } = await verifyCompactJws(plaintext, (kid) => ctx.resolveSigner(kid));
    return { format: 'jose', signed, payload, signer };
  },
};
