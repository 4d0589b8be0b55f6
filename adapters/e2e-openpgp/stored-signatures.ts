import { readMessage } from 'openpgp';
import { sha256Hex } from '../../broker/core/sha256.js';
import type { HistoricalAgencyKey, StoredSignatureVerifier } from '../format.js';
import { openPgpStoredSignatures } from '../openpgp/stored-signatures.js';
import { parseE2ePgpEnvelope } from './wire.js';

/**
 * The audit's check of a stored openpgp-e2e envelope: its header's signature
 * against the OpenPGP key history, under the same rules as a stored OpenPGP
 * notice, and the header's body_sha256 against the stored body. The body
 * stays opaque: the auditor holds no key that opens it (docs/end-to-end.md).
 */
export function e2ePgpStoredSignatures(history: readonly HistoricalAgencyKey[]): StoredSignatureVerifier {
  const pgp = openPgpStoredSignatures(history);
  return {
    concurrency: pgp.concurrency,
    async verify(signed, claim) {
      let env;
      try {
        env = parseE2ePgpEnvelope(signed, signed.length);
      } catch {
        return { code: 'notice-signature-invalid', message: 'the stored end-to-end envelope is not {header, body}' };
      }
      const found = await pgp.verify(new TextEncoder().encode(env.header), claim);
      if (found) return found;
      let bodySha: unknown;
      try {
        const message = await readMessage({ armoredMessage: env.header });
        const literal = message.getLiteralData() as Uint8Array;
        bodySha = (JSON.parse(new TextDecoder().decode(literal)) as { body_sha256?: unknown }).body_sha256;
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
