import { sha256Hex } from '../../broker/core/sha256.js';
import type { HistoricalAgencyKey, StoredSignatureVerifier } from '../format.js';
import { joseStoredSignatures } from '../jose/stored-signatures.js';
import { parseE2eEnvelope } from './wire.js';

/**
 * The audit's check of a stored end-to-end envelope, in either form: the
 * header's signature by `signatures` (the form's own rules against the key
 * history), then the signed routing header's body_sha256 against the stored
 * body. The body itself stays opaque: the auditor holds no key that opens it
 * (docs/end-to-end.md).
 */
export function routingHeaderStoredSignatures(
  signatures: StoredSignatureVerifier,
  parse: (signed: Uint8Array) => { header: string; body: string },
  /** The signed routing header's JSON, read from a header whose signature verified. */
  headerPayload: (header: string) => Promise<Uint8Array>,
): StoredSignatureVerifier {
  return {
    concurrency: signatures.concurrency,
    async verify(signed, claim) {
      let env;
      try {
        env = parse(signed);
      } catch {
        return { code: 'notice-signature-invalid', message: 'the stored end-to-end envelope is not {header, body}' };
      }
      const found = await signatures.verify(new TextEncoder().encode(env.header), claim);
      if (found) return found;
      let bodySha: unknown;
      try {
        const payload = new TextDecoder().decode(await headerPayload(env.header));
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

/** jose-e2e: the routing header is a compact JWS, checked like a notice JWS. */
export function e2eStoredSignatures(history: readonly HistoricalAgencyKey[]): StoredSignatureVerifier {
  return routingHeaderStoredSignatures(
    joseStoredSignatures(history),
    (signed) => parseE2eEnvelope(signed, signed.length),
    async (header) => Buffer.from(header.split('.')[1] ?? '', 'base64url'),
  );
}
