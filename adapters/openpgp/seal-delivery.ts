import { createMessage, encrypt, type PrivateKey, type PublicKey } from 'openpgp';

/**
 * An OpenPGP delivery (issue 5): the origin's signed notice exactly as stored in
 * NOTICES (a compact JWS, or an armored OpenPGP signed message) as literal data,
 * signed by the broker's OpenPGP key and encrypted to the recipient agency's
 * certificate. The recipient checks the broker's signature on the delivery, and
 * the origin's signature inside it itself (the broker cannot forge that one).
 *
 * This is the seam for the router (broker/routing/**, owned elsewhere): an
 * agency whose registry entry has `delivery_format: 'openpgp'` gets this
 * instead of the JWE of broker/routing/encrypt.ts. Not wired yet.
 */
export interface OpenPgpDeliverySealer {
  seal(signed: Uint8Array, to: { key: PublicKey; noticeId: string; format: 'jose' | 'openpgp' }): Promise<string>;
}

export function createOpenPgpDeliverySealer(brokerKey: PrivateKey): OpenPgpDeliverySealer {
  return {
    async seal(signed, to) {
      const message = await createMessage({ binary: signed, filename: `${to.noticeId}.${to.format === 'openpgp' ? 'asc' : 'jws'}`, format: 'binary' });
      return encrypt({ message, encryptionKeys: to.key, signingKeys: brokerKey, format: 'armored' });
    },
  };
}
