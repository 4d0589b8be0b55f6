import { compactVerify } from 'jose';
import type { ResolvedSigner } from '../../broker/core/envelope.js';
import { LiaisonError } from '../../broker/core/errors.js';
import { parseProtectedHeader } from '../../broker/core/jose-header.js';

/** Signature algorithms accepted from agencies: asymmetric only (never none or HS*). */
export const JWS_ALGS = ['EdDSA', 'Ed25519', 'ES256'] as const;
const JWS_PARAMS = ['alg', 'kid', 'typ', 'cty'];

export interface VerifiedJws {
  signed: Uint8Array;
  payload: Uint8Array;
  signer: ResolvedSigner;
}

/** Step 3 (JOSE): the decrypted plaintext is a compact JWS by a registered, active agency key. */
export async function verifyCompactJws(
  plaintext: Uint8Array,
  resolveSigner: (kid: string) => Promise<ResolvedSigner>,
): Promise<VerifiedJws> {
  let jws: string;
  try {
    jws = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
  } catch (e) {
    throw new LiaisonError('envelope-malformed', {
      publicDetail: 'the decrypted content is not a compact JWS',
      cause: e,
    });
  }
  const parts = jws.split('.');
  if (parts.length !== 3)
    throw new LiaisonError('envelope-malformed', { publicDetail: 'the decrypted content is not a compact JWS' });
  const header = parseProtectedHeader(parts[0] as string, {
    what: 'JWS',
    allowedAlgs: JWS_ALGS,
    allowedParams: JWS_PARAMS,
  });
  if (parts[2] === '') throw new LiaisonError('signature-invalid', { detail: 'empty signature' });
  const signer = await resolveSigner(header.kid);
  if (!signer.algorithms.includes(header.alg))
    throw new LiaisonError('signature-invalid', { detail: 'alg does not match the registered key type' });
  try {
    const { payload } = await compactVerify(jws, signer.key, { algorithms: [...signer.algorithms] });
    return { signed: new TextEncoder().encode(jws), payload, signer };
  } catch (e) {
    throw new LiaisonError('signature-invalid', {
      detail: `JWS verification failed: ${(e as { code?: string }).code ?? 'error'}`,
      cause: e,
    });
  }
}
