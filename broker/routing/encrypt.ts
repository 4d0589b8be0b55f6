import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import type { RegistryJwk } from '../registry/model.js';

/** Key management and content encryption of every delivery (RFC 7518 §4.6, §5.3). */
export const DELIVERY_ALG = 'ECDH-ES+A256KW';
export const DELIVERY_ENC = 'A256GCM';
export const DELIVERY_TYP = 'liaison-delivery+jwe';

/**
 * Encrypt the origin's signed notice, exactly as stored, to one recipient's
 * encryption key: a compact JWE whose plaintext is the origin's compact JWS, so
 * the recipient verifies the origin's signature itself (the broker cannot forge it).
 * `cty: JWT` marks nested JOSE content (RFC 7516 §4.1.12).
 */
export async function encryptDelivery(signed: Uint8Array, recipient: { kid: string; jwk: RegistryJwk }, noticeId: string): Promise<string> {
  const key = await importJWK({ ...(recipient.jwk as JWK), alg: DELIVERY_ALG }, DELIVERY_ALG);
  return new CompactEncrypt(signed)
    .setProtectedHeader({ alg: DELIVERY_ALG, enc: DELIVERY_ENC, kid: recipient.kid, typ: DELIVERY_TYP, cty: 'JWT', 'liaison-notice-id': noticeId })
    .encrypt(key);
}

/** The recipient's side: decrypt a delivery with its own private encryption key; returns the origin's signed bytes. */
export async function decryptDelivery(jwe: string, privateJwk: JWK): Promise<{ signed: Uint8Array; header: Record<string, unknown> }> {
  const key = await importJWK({ ...privateJwk, alg: DELIVERY_ALG }, DELIVERY_ALG);
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, key, { keyManagementAlgorithms: [DELIVERY_ALG], contentEncryptionAlgorithms: [DELIVERY_ENC] });
  return { signed: plaintext, header: protectedHeader as Record<string, unknown> };
}
