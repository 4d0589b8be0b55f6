import { sha256Hex } from '../../broker/core/sha256.js';
import type { HistoricalAgencyKey, StoredSignatureVerifier } from '../format.js';
import { joseStoredSignatures } from '../jose/stored-signatures.js';
import { parseE2eEnvelope } from './wire.js';

/**
 * The audit's check of a stored end-to-end envelope: its routing header JWS
 * against the JOSE key history, under the same rules as a notice JWS, and the
 * header's body_sha256 against the stored body. The body itself stays opaque:
 * the auditor holds no key that opens it (docs/end-to-end.md).
 */
export function e2eStoredSignatures(history: readonly HistoricalAgencyKey[]): StoredSignatureVerifier {
  const jose = joseStoredSignatures(history);
  return {
    concurrency: jose.concurrency,
    async verify(signed, claim) {
      let env;
      try {
        env = parseE2eEnvelope(signed, signed.length);
      } catch {
        return { code: 'notice-signature-invalid', message: 'the stored end-to-end envelope is not {header, body}' };
      }
      const found = await jose.verify(new TextEncoder().encode(env.header), claim);
      if (found) return found;
      const payload = Buffer.from(env.header.split('.')[1] ?? '', 'base64url').toString('utf8');
      let bodySha: unknown;
      try {
        bodySha = (JSON.parse(payload) as { body_sha256?: unknown }).body_sha256;
      } catch {
        bodySha = undefined;
      }
      if (bodySha !== sha256Hex(Buffer.from(env.body, 'utf8')))
        return {
          code: 'notice-signature-invalid',
          message: "the stored body is not the one the origin's signed routing header binds (body_sha256)",
        };
      return undefined;
    },
  };
}
