import { verify, type KeyObject } from 'node:crypto';
import type { ResolvedSigner } from '../../broker/core/envelope.js';
import { LiaisonError } from '../../broker/core/errors.js';
import { b64urlDecode, parseProtectedHeader } from '../../broker/core/jose-header.js';
import { keyObjectOf } from '../../broker/keys/key-object.js';

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
  const key = keyObjectOf(signer.key);
  let valid: boolean;
  try {
    valid = verifies(header.alg, key, `${parts[0]}.${parts[1]}`, b64urlDecode(parts[2] as string, 'JWS signature'));
  } catch (e) {
    throw new LiaisonError('signature-invalid', { detail: 'JWS verification failed: error', cause: e });
  }
  if (!valid) throw new LiaisonError('signature-invalid', { detail: 'JWS verification failed: the signature' });
  let payload: Uint8Array;
  try {
    payload = b64urlDecode(parts[1] as string, 'JWS payload');
  } catch (e) {
    throw new LiaisonError('signature-invalid', { detail: 'JWS verification failed: the payload', cause: e });
  }
  return { signed: new TextEncoder().encode(jws), payload, signer };
}

/**
 * One signature check with node:crypto's synchronous verify (RFC 7515 §5.2
 * step 8, over ASCII(protected '.' payload)): EdDSA and its fully specified
 * name Ed25519 (RFC 8037 §3.1, RFC 9864) need an Ed25519 key; ES256 (RFC 7518
 * §3.4) a P-256 key and the 64-byte R || S signature (ieee-p1363), never DER.
 * Why not jose: its compactVerify is a WebCrypto call, ~30 µs of async
 * bookkeeping per notice on libuv's pool (bench/crypto-calls.ts).
 */
function verifies(alg: string, key: KeyObject, signingInput: string, signature: Uint8Array): boolean {
  const data = Buffer.from(signingInput, 'ascii');
  if (alg === 'EdDSA' || alg === 'Ed25519')
    return key.asymmetricKeyType === 'ed25519' && signature.length === 64 && verify(null, data, key, signature);
  if (alg === 'ES256')
    return (
      key.asymmetricKeyType === 'ec' &&
      key.asymmetricKeyDetails?.namedCurve === 'prime256v1' &&
      signature.length === 64 &&
      verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
    );
  return false;
}
