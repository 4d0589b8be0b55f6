import { compactDecrypt, type CryptoKey } from 'jose';
import { LiaisonError } from '../../broker/core/errors.js';
import { JWE_ALGS, JWE_ENCS, type ParsedJwe } from './parse-jwe.js';

/**
 * Step 2 (JOSE): decrypt with the broker key named by kid. Every failure after the
 * key is found is the same `decrypt-failed` answer (no padding or key oracle).
 */
export async function decryptJwe(
  jwe: ParsedJwe,
  decryptionKey: (kid: string) => CryptoKey | undefined,
): Promise<Uint8Array> {
  const key = decryptionKey(jwe.header.kid);
  if (!key)
    throw new LiaisonError('key-unknown', {
      publicDetail: 'the JWE kid is not a broker encryption key; fetch GET /v1/keys',
    });
  try {
    const { plaintext } = await compactDecrypt(jwe.compact, key, {
      keyManagementAlgorithms: [...JWE_ALGS],
      contentEncryptionAlgorithms: [...JWE_ENCS],
    });
    return plaintext;
  } catch (e) {
    throw new LiaisonError('decrypt-failed', {
      detail: `JWE decryption failed: ${(e as { code?: string }).code ?? 'error'}`,
      cause: e,
    });
  }
}
