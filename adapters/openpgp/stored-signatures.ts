import { readMessage } from 'openpgp';
import type { HistoricalAgencyKey, StoredSignatureVerifier } from '../format.js';
import { LiaisonError } from '../../broker/core/errors.js';
import { createOpenPgpSignerResolver } from './signers.js';
import { RegistrySnapshot, type Agency, type OpenPgpAgencyKey } from '../../broker/registry/model.js';
import { strictConfig } from './decrypt-message.js';
import { DEFAULT_OPENPGP_LIMITS } from './limits.js';
import { verifyMessage } from './verify-message.js';

/** The OpenPGP signing keys of the history as the registry snapshot model knows them (for the signer resolver). */
function historySnapshot(keys: readonly HistoricalAgencyKey[]): RegistrySnapshot {
  const agencies = new Map<string, Agency>();
  for (const k of keys) {
    if (k.format !== 'openpgp' || k.use !== 'sig') continue;
    const a = agencies.get(k.agency) ?? {
      id: k.agency,
      country: '',
      name: k.agency,
      roles: [],
      keys: [],
      openpgp_keys: [],
    };
    const rec: OpenPgpAgencyKey = {
      kid: k.kid,
      use: 'sig',
      format: 'openpgp',
      armored: k.armored ?? '',
      status: k.status,
    };
    for (const f of ['not_before', 'not_after', 'revoked_at'] as const) if (k[f] !== undefined) rec[f] = k[f];
    a.openpgp_keys!.push(rec);
    agencies.set(k.agency, a);
  }
  return new RegistrySnapshot(agencies.values(), []);
}

/**
 * The audit's check of a stored armored signed message: ingest's own verifier,
 * with a signer resolver over the history's OpenPGP keys at received_at. The
 * resolver reads the time of the check in progress, so checks run one at a time.
 */
export function openPgpStoredSignatures(history: readonly HistoricalAgencyKey[]): StoredSignatureVerifier {
  let at = new Date(0);
  const snap = historySnapshot(history);
  const resolver = createOpenPgpSignerResolver(
    () => snap,
    () => at,
  );
  const cfg = strictConfig(DEFAULT_OPENPGP_LIMITS);
  return {
    concurrency: 1,
    async verify(signed, claim) {
      at = claim.at;
      try {
        const message = await readMessage({ armoredMessage: new TextDecoder().decode(signed), config: cfg });
        const { signer } = await verifyMessage(message, resolver, claim.at, cfg);
        if (signer.kid !== claim.signerKid)
          return {
            code: 'notice-signer-mismatch',
            message: `the OpenPGP message is signed by ${signer.kid}, the log entry names ${claim.signerKid}`,
          };
        if (signer.agencyId !== claim.originAgency)
          return {
            code: 'notice-signer-wrong-agency',
            message: `signer key ${signer.kid} belongs to ${signer.agencyId}, not to the origin agency ${String(claim.originAgency)}`,
          };
        return undefined;
      } catch (err) {
        const code = err instanceof LiaisonError ? err.code : undefined;
        const detail = (err as Error).message;
        return {
          code:
            code === 'key-unknown'
              ? 'notice-signer-unknown'
              : code === 'key-revoked'
                ? 'notice-signer-not-valid'
                : 'notice-signature-invalid',
          message: `the stored OpenPGP message does not verify at received_at ${claim.receivedAt}: ${detail}`,
        };
      }
    },
  };
}
