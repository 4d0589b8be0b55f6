import type { ResolvedSigner } from '../../broker/core/envelope.js';
import type { HistoricalAgencyKey, StoredSignatureVerifier } from '../format.js';
import { LiaisonError } from '../../broker/core/errors.js';
import { importKey, signatureAlgsFor } from '../../broker/keys/jwk.js';
import { keyStateAt } from '../../broker/registry/model.js';
import { verifyCompactJws } from './verify-jws.js';

/** Origin signatures checked at once: enough to keep every core's share of libuv's pool busy (WebCrypto verifies there). */
const JOSE_BATCH = 64;

const validity = (k: Pick<HistoricalAgencyKey, 'status' | 'not_before' | 'not_after' | 'revoked_at'>) =>
  [
    k.status,
    k.revoked_at && `revoked_at ${k.revoked_at}`,
    k.not_before && `not_before ${k.not_before}`,
    k.not_after && `not_after ${k.not_after}`,
  ]
    .filter(Boolean)
    .join(', ');

/**
 * The audit's check of a stored compact JWS against the JOSE keys of the
 * history: the key the entry names must be one key, of the origin agency, valid
 * at received_at; the JWS passes ingest's header rules, names that key, and its
 * signature is that key's.
 */
export function joseStoredSignatures(history: readonly HistoricalAgencyKey[]): StoredSignatureVerifier {
  const byKid = new Map<string, HistoricalAgencyKey[]>();
  for (const k of history) {
    if (k.format !== 'jose') continue;
    byKid.set(k.kid, [...(byKid.get(k.kid) ?? []), k]);
  }
  const imported = new Map<string, Promise<ResolvedSigner>>();
  return {
    concurrency: JOSE_BATCH,
    async verify(signed, claim) {
      const candidates = byKid.get(claim.signerKid) ?? [];
      if (candidates.length === 0)
        return {
          code: 'notice-signer-unknown',
          message: `signer key ${claim.signerKid} is not in the agency key history`,
        };
      if (candidates.length > 1) {
        const agencies = [...new Set(candidates.map((c) => c.agency))].join(', ');
        return {
          code: 'notice-signer-unknown',
          message: `signer key ${claim.signerKid} is claimed by ${candidates.length} different keys in the history (${agencies}): it names none`,
        };
      }
      const key = candidates[0]!;
      if (key.agency !== claim.originAgency)
        return {
          code: 'notice-signer-wrong-agency',
          message: `signer key ${key.kid} belongs to ${key.agency}, not to the origin agency ${String(claim.originAgency)}`,
        };
      const state = key.use === 'sig' ? keyStateAt(key, claim.at) : 'not a signing key';
      if (state !== 'active')
        return {
          code: 'notice-signer-not-valid',
          message: `signer key ${key.kid} was ${state} at received_at ${claim.receivedAt} (${validity(key)})`,
        };
      const resolve = async (kid: string): Promise<ResolvedSigner> => {
        if (kid !== key.kid)
          throw new LiaisonError('signature-invalid', { detail: `the JWS names key ${kid}, the log entry ${key.kid}` });
        let p = imported.get(kid);
        if (!p) {
          const algorithms = signatureAlgsFor(key.jwk ?? {});
          p = importKey(key.jwk as Parameters<typeof importKey>[0], algorithms[0] ?? 'none').then((k) => ({
            kid,
            agencyId: key.agency,
            key: k,
            algorithms,
          }));
          imported.set(kid, p);
        }
        return p;
      };
      try {
        await verifyCompactJws(signed, resolve);
        return undefined;
      } catch (err) {
        const detail = (err as Error).message;
        return {
          code: /names key/.test(String(detail)) ? 'notice-signer-mismatch' : 'notice-signature-invalid',
          message: `the stored JWS does not verify with ${key.kid}: ${detail}`,
        };
      }
    },
  };
}
