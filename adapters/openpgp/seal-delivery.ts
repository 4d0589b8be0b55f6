import {
  createMessage,
  encrypt,
  Message,
  PacketList,
  PublicKeyEncryptedSessionKeyPacket,
  type AnyPacket,
  type KeyID,
  type PrivateKey,
  type PublicKey,
} from 'openpgp';
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
  /** One notice to one recipient certificate: an armored message. */
  seal(signed: Uint8Array, to: { key: PublicKey; noticeId: string; format: string }): Promise<string>;
  /**
   * One notice to each of `keys`, signed once and encrypted once: one armored
   * message per key, in order, each that key's PKESK and the shared SEIPD.
   */
  sealAll(signed: Uint8Array, to: { keys: readonly PublicKey[]; noticeId: string; format: string }): Promise<string[]>;
}

/** The runtime field openpgp.js's types leave out: the key ID a PKESK is encrypted to (RFC 9580 §5.1). */
const pkeskKeyId = (p: PublicKeyEncryptedSessionKeyPacket) => (p as unknown as { publicKeyID: KeyID }).publicKeyID;

export function createOpenPgpDeliverySealer(brokerKey: PrivateKey): OpenPgpDeliverySealer {
  const sealer: OpenPgpDeliverySealer = {
    async seal(signed, to) {
      const [armored] = await sealer.sealAll(signed, { keys: [to.key], noticeId: to.noticeId, format: to.format });
      return armored!;
    },
    /**
     * A message to several recipients is one SEIPD packet (the signed literal
     * data, encrypted once under a session key) after one PKESK per recipient,
     * each wrapping that session key to its certificate (RFC 9580 §10.3); which
     * PKESKs come before it is no part of the SEIPD. So each recipient gets its
     * own PKESK and the SEIPD: a complete message, naming no other recipient.
     * The broker's signature is made once (it binds no recipient: openpgp.js
     * reads the recipients' keys only for their hash preferences); the cipher
     * is one every recipient's certificate accepts, as for any message to many.
     */
    async sealAll(signed, to) {
      if (!Object.hasOwn(DELIVERY_FILE_EXTENSION, to.format))
        throw new LiaisonError('format-unknown', {
          detail: `no OpenPGP delivery file name for envelope format ${JSON.stringify(to.format)}`,
        });
      if (to.keys.length === 0) return [];
      const message = await createMessage({
        binary: signed,
        filename: `${to.noticeId}.${DELIVERY_FILE_EXTENSION[to.format]}`,
        format: 'binary',
      });
      const encrypted = await encrypt({
        message,
        encryptionKeys: [...to.keys],
        signingKeys: brokerKey,
        format: 'object',
      });
      const pkesks = encrypted.packets.filter((p) => p instanceof PublicKeyEncryptedSessionKeyPacket);
      const shared = encrypted.packets.filter((p) => !(p instanceof PublicKeyEncryptedSessionKeyPacket));
      // openpgp.js writes the PKESKs in the order of the keys; checked, as a wrong pairing would be a delivery nobody opens.
      if (
        pkesks.length !== to.keys.length ||
        pkesks.some((p, i) => !to.keys[i]!.getKeyIDs().some((id) => id.equals(pkeskKeyId(p))))
      )
        throw new Error('OpenPGP delivery: the session key packets do not match the recipients');
      return pkesks.map((pkesk) => {
        const packets = new PacketList<AnyPacket>();
        packets.push(pkesk, ...shared);
        return new Message(packets).armor();
      });
    },
  };
  return sealer;
}
