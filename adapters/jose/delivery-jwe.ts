/**
 * The delivery JWEs (RFC 7516 flattened JSON serialization, RFC 7518
 * ECDH-ES+A256KW with A256GCM) made with node:crypto's synchronous primitives
 * (OpenSSL): one content encryption per notice, a key agreement and wrap per
 * recipient (encryptDeliveryJwes).
 *
 * Why not jose here: jose 6 runs on WebCrypto only, and on Node 20 every
 * WebCrypto call carries 30-100 µs of bookkeeping (a promise, a job, WebIDL
 * conversion, key objects): sealing one delivery took ~0.7 ms of CPU (an
 * ephemeral key pair, ECDH, the KDF digest, two key imports, key wrap and
 * AES-GCM, each a WebCrypto call), about as much as the whole of a notice's
 * ingest crypto, and the router makes 3-4 per notice. The same steps with
 * node:crypto's synchronous calls cost ~0.2 ms, on the sealing worker
 * (`node dist/bench/crypto-calls.js` measures both).
 * Only encryption is done here: everything the broker reads from outside
 * (envelopes, tokens) is still parsed and verified by jose. Recipients open
 * deliveries with any JOSE library; the tests open these with jose and with
 * python3-jwcrypto.
 */
import {
  createCipheriv,
  createECDH,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  type ECDH,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import type { RegistryJwk } from '../../broker/registry/model.js';

export const JWE_ALG = 'ECDH-ES+A256KW';
export const JWE_ENC = 'A256GCM';

const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');

/** The recipient curves a delivery key may use (registry: X25519 or P-256 `use: enc` keys). */
type Curve = 'X25519' | 'P-256';

function curveOf(jwk: RegistryJwk): Curve {
  if (jwk.kty === 'OKP' && jwk.crv === 'X25519') return 'X25519';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'P-256';
  throw new TypeError(`delivery key: unsupported ${String(jwk.kty)}/${String(jwk.crv)} (X25519 or P-256 expected)`);
}

/** A recipient's public key, ready for ECDH: a KeyObject (X25519) or the uncompressed point (P-256, for node:crypto's ECDH class). */
export type RecipientKey = { crv: 'X25519'; key: KeyObject } | { crv: 'P-256'; point: Buffer };

/** Import a registry `use: enc` JWK (only its public members are read); throws on anything but a valid X25519 or P-256 key. */
export function importRecipientKey(jwk: RegistryJwk): RecipientKey {
  const crv = curveOf(jwk);
  if (crv === 'X25519')
    return { crv, key: createPublicKey({ key: { kty: 'OKP', crv, x: jwk.x } as JsonWebKey, format: 'jwk' }) };
  // Imported once as a key to have the point checked (on the curve, right sizes), then kept as raw bytes.
  createPublicKey({ key: { kty: 'EC', crv, x: jwk.x, y: jwk.y } as JsonWebKey, format: 'jwk' });
  const [x, y] = [Buffer.from(String(jwk.x), 'base64url'), Buffer.from(String(jwk.y), 'base64url')];
  if (x.length !== 32 || y.length !== 32)
    throw new TypeError('delivery key: P-256 x and y must be 32 bytes each (RFC 7518 §6.2.1)');
  return { crv, point: Buffer.concat([Buffer.from([0x04]), x, y]) };
}

/** The X25519 base point (u = 9): X25519(k, 9) is the public key of the scalar k (RFC 7748 §6.1). */
const X25519_BASE = createPublicKey({
  key: { kty: 'OKP', crv: 'X25519', x: Buffer.concat([Buffer.from([9]), Buffer.alloc(31)]).toString('base64url') },
  format: 'jwk',
});

/**
 * One notice's ephemeral keys: one per curve, made when first needed and used
 * with every recipient on that curve. `agree` gives the shared secret Z with a
 * recipient's key and the ephemeral public key as the JWE's `epk`. The public
 * half is computed, not exported: OpenSSL 3's key encoders cost more than the
 * key agreement itself (bench profile), and Node 20's JWK export has been seen
 * to hang right after an X25519 key generation here. X25519: the public key is
 * X25519(k, 9). P-256: node:crypto's ECDH class gives the point directly.
 */
class Ephemerals {
  #x25519: { privateKey: KeyObject; epk: Record<string, string> } | undefined;
  #p256: { ecdh: ECDH; epk: Record<string, string> } | undefined;

  agree(recipient: RecipientKey): { z: Buffer; epk: Record<string, string> } {
    if (recipient.crv === 'X25519') {
      this.#x25519 ??= Ephemerals.#newX25519();
      const { privateKey, epk } = this.#x25519;
      return { z: diffieHellman({ privateKey, publicKey: recipient.key }), epk };
    }
    this.#p256 ??= Ephemerals.#newP256();
    return { z: this.#p256.ecdh.computeSecret(recipient.point), epk: this.#p256.epk };
  }

  static #newX25519() {
    const { privateKey } = generateKeyPairSync('x25519');
    const pub = diffieHellman({ privateKey, publicKey: X25519_BASE });
    return { privateKey, epk: { kty: 'OKP', crv: 'X25519', x: b64u(pub) } };
  }

  static #newP256() {
    const ecdh = createECDH('prime256v1');
    const point = ecdh.generateKeys();
    return { ecdh, epk: { kty: 'EC', crv: 'P-256', x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) } };
  }
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const lengthPrefixed = (b: Uint8Array) => Buffer.concat([u32(b.length), b]);

/**
 * RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A) with SHA-256, one round for a
 * 256-bit key: SHA-256(counter 1 || Z || AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo),
 * AlgorithmID the `alg` value, PartyUInfo and PartyVInfo empty (no apu/apv), SuppPubInfo the key length in bits.
 */
export function concatKdf256(z: Uint8Array, alg: string): Buffer {
  return createHash('sha256')
    .update(u32(1))
    .update(z)
    .update(lengthPrefixed(Buffer.from(alg, 'ascii')))
    .update(lengthPrefixed(Buffer.alloc(0)))
    .update(lengthPrefixed(Buffer.alloc(0)))
    .update(u32(256))
    .digest();
}

/** RFC 3394 AES key wrap with a 256-bit key-encryption key (OpenSSL's id-aes256-wrap, default IV A6A6A6A6A6A6A6A6). */
function aesKeyWrap256(kek: Uint8Array, cek: Uint8Array): Buffer {
  const c = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
  return Buffer.concat([c.update(cek), c.final()]);
}

/**
 * One notice's delivery JWEs: one content encryption shared by every
 * recipient, each recipient getting a complete JWE in the flattened JSON
 * serialization (RFC 7516 §7.2.2) as its JSON text, in the order given.
 * `header`: the protected members common to all (typ, cty, ...); `enc` is set
 * here, and each recipient's unprotected `header` holds its alg, kid and epk.
 *
 * Why sharing is sound:
 * - A JWE's JSON serialization has one iv, ciphertext, tag and protected header
 *   for all recipients and an `encrypted_key` and `header` per recipient
 *   (RFC 7516 §7.2.1); the AAD covers the protected header only (§5.1 step 14),
 *   so each recipient's part with the shared parts is itself a complete JWE.
 * - `epk` may be a per-recipient unprotected member: the JOSE Header is the
 *   union of the three (RFC 7516 §7.2.1), and RFC 7520 §5.13 shows an
 *   ECDH-ES+A256KW recipient with its epk there. The Concat KDF's inputs are
 *   the recipient's own (RFC 7518 §4.6.2: AlgorithmID is the alg value for key
 *   agreement with key wrapping, apu/apv empty, 256 bits), as before.
 * - One ephemeral key per curve for all the notice's recipients, as CMS's
 *   KeyAgreeRecipientInfo has one originator key for many recipients
 *   (RFC 5652 §6.2.2): each Z = ECDH(e, R_i) is a different secret, and a
 *   recipient holding r_i learns nothing of another's without e or r_j.
 * - One CEK, one IV, one AES-GCM pass: nothing is encrypted twice under the
 *   same key and nonce. A recipient learns the CEK of a notice it reads anyway.
 *   A JWE never authenticated its sender (anyone with the recipient's public
 *   key can make one); the origin's signature inside does that.
 * - alg, kid and epk are no longer under the AAD: a changed alg is refused by
 *   the recipient's allowlist, a changed epk or encrypted_key fails the key
 *   unwrap (RFC 3394 §2.2.3) and so the tag; kid only names the key to try.
 */
export function encryptDeliveryJwes(
  plaintext: Uint8Array,
  recipients: readonly { kid: string; key: RecipientKey }[],
  header: Record<string, string>,
): string[] {
  const cek = randomBytes(32);
  const iv = randomBytes(12);
  const protectedHeader = b64u(JSON.stringify({ ...header, enc: JWE_ENC }));
  const gcm = createCipheriv('aes-256-gcm', cek, iv);
  gcm.setAAD(Buffer.from(protectedHeader, 'ascii'));
  const ciphertext = Buffer.concat([gcm.update(plaintext), gcm.final()]);
  // base64url needs no JSON escaping: the shared members are written once, as text.
  const shared = `"iv":"${b64u(iv)}","ciphertext":"${b64u(ciphertext)}","tag":"${b64u(gcm.getAuthTag())}"`;
  const ephemerals = new Ephemerals();
  const out = recipients.map(({ kid, key }) => {
    const { z, epk } = ephemerals.agree(key);
    const kek = concatKdf256(z, JWE_ALG);
    z.fill(0);
    const encryptedKey = aesKeyWrap256(kek, cek);
    kek.fill(0);
    const perRecipient = JSON.stringify({ alg: JWE_ALG, kid, epk });
    return `{"protected":"${protectedHeader}","header":${perRecipient},"encrypted_key":"${b64u(encryptedKey)}",${shared}}`;
  });
  cek.fill(0);
  return out;
}
