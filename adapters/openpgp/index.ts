import type { PrivateKey } from 'openpgp';
import type { EnvelopeAdapter } from '../../broker/core/envelope.js';
import type { OpenPgpSignerResolver } from './signers.js';
import { dearmorMessage } from './dearmor.js';
import { decryptMessage, strictConfig } from './decrypt-message.js';
import { DEFAULT_OPENPGP_LIMITS, type OpenPgpLimits } from './limits.js';
import { verifyMessage } from './verify-message.js';

export { DEFAULT_OPENPGP_LIMITS, type OpenPgpLimits } from './limits.js';

export interface OpenPgpEnvelopeDeps {
  /** The broker's OpenPGP private keys, decrypted once at start. */
  decryptionKeys: readonly PrivateKey[];
  /** Registered agency OpenPGP signing certificates, checked for now. */
  resolveSigner: OpenPgpSignerResolver;
  limits?: Partial<OpenPgpLimits>;
  now?: () => Date;
}

/**
 * OpenPGP envelopes (RFC 9580, v4 keys as GnuPG 2.2 makes them): one ASCII-armored
 * message, encrypted to the broker's OpenPGP key, holding one message signed by
 * the agency: armor → packet scan → decrypt → one signature → registered key.
 * `signed` is the agency's signed message (decompressed, armored), `payload` the notice JSON.
 */
export function createOpenPgpEnvelope(deps: OpenPgpEnvelopeDeps): EnvelopeAdapter {
  const limits: OpenPgpLimits = { ...DEFAULT_OPENPGP_LIMITS, ...deps.limits };
  const cfg = strictConfig(limits);
  const now = deps.now ?? (() => new Date());
  return {
    format: 'openpgp',
    mediaTypes: ['application/pgp-encrypted'],
    async open(body) {
      const binary = dearmorMessage(body, limits);
      const decrypted = await decryptMessage(binary, deps.decryptionKeys, limits, cfg);
      const { signed, payload, signer } = await verifyMessage(decrypted, deps.resolveSigner, now(), cfg);
      return { format: 'openpgp', signed, payload, signer: { kid: signer.kid, agencyId: signer.agencyId } };
    },
  };
}
