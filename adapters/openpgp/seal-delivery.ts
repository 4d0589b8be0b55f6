import { createMessage, encrypt, type PrivateKey, type PublicKey } from 'openpgp';
import { LiaisonError } from '../../broker/core/errors.js';

/** The literal data's file name extension for a notice of each origin format (one per registered format: test/envelope-formats.test.ts). */
export const DELIVERY_FILE_EXTENSION: Readonly<Record<string, string>> = { jose: 'jws', openpgp: 'asc' };

/**
 * An OpenPGP delivery (issue 5): the origin's signed notice exactly as stored in
 * NOTICES (a compact JWS, or an armored OpenPGP signed message) as literal data,
 * signed by the broker's OpenPGP key and encrypted to the recipient agency's
 * certificate. The recipient checks the broker's signature on the delivery, and
 * the origin's signature inside it itself (the broker cannot forge that one).
 *
 * The router reaches it through the format registry (adapters/openpgp/format.ts):
 * an agency whose registry entry has `delivery_format: 'openpgp'` gets this
 * instead of the JWE of adapters/jose/encrypt.ts.
 */
export interface OpenPgpDeliverySealer {
  seal(signed: Uint8Array, to: { key: PublicKey; noticeId: string; format: string }): Promise<string>;
}

export function createOpenPgpDeliverySealer(brokerKey: PrivateKey): OpenPgpDeliverySealer {
  return {
    async seal(signed, to) {
      if (!Object.hasOwn(DELIVERY_FILE_EXTENSION, to.format))
        throw new LiaisonError('format-unknown', {
          detail: `no OpenPGP delivery file name for envelope format ${JSON.stringify(to.format)}`,
        });
      const message = await createMessage({
        binary: signed,
        filename: `${to.noticeId}.${DELIVERY_FILE_EXTENSION[to.format]}`,
        format: 'binary',
      });
      // openpgp's own types give `any` here; format 'armored' makes it a string.
      return encrypt({ message, encryptionKeys: to.key, signingKeys: brokerKey, format: 'armored' }) as Promise<string>;
    },
  };
}
