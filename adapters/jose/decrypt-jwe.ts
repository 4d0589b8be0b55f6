/**
 * Step 2 (JOSE): open the envelope's compact JWE (RFC 7516) with node:crypto's
 * synchronous primitives (OpenSSL).
 *
 * Why not jose here: jose 6 runs on WebCrypto only, and on Node 20 each
 * WebCrypto call carries ~30 µs of promise, job and key-object bookkeeping on
 * libuv's pool; jose's compactDecrypt makes five of them per notice (import the
 * epk, deriveBits, the KDF digest, key unwrap, AES-GCM) where the primitives
 * themselves cost less (`node dist/bench/crypto-calls.js` measures both).
 * Only the primitives change: the protected header was parsed and checked
 * before this runs (parse-jwe.ts: strict JSON, the alg and enc allow-lists, no
 * crit, zip or key-bearing members, a kid), and what jose checked on the rest
 * is checked here the same way (below). Tests open envelopes made by jose and
 * by python3-jwcrypto for every alg, enc and curve accepted.
 */
import { createDecipheriv, createHash, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import type { CryptoKey } from 'jose';
import { LiaisonError } from '../../broker/core/errors.js';
import { b64urlDecode } from '../../broker/core/jose-header.js';
import { keyObjectOf } from '../../broker/keys/key-object.js';
import type { ParsedJwe } from './parse-jwe.js';

/** Members that make a JWK private (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2): an epk carrying one is refused, as jose does. */
const PRIVATE_MEMBERS = ['d', 'k', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'priv'];
const RFC3394_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

/** Every reason an envelope does not open is the same public answer; the reason is for the log only. */
const unopenable = (why: string) => new LiaisonError('decrypt-failed', { detail: `JWE decryption failed: ${why}` });

function part(value: string | undefined, what: string): Buffer {
  try {
    return Buffer.from(b64urlDecode(value ?? '', what));
  } catch {
    throw unopenable(`${what} is not base64url`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The sender's ephemeral public key (RFC 7518 §4.6.1.1) on the broker key's
 * curve. Only kty, crv, x and y are read (other public members, kid or use,
 * are ignored, as jose ignores them); the import checks the point (P-256: on
 * the curve; X25519: 32 bytes).
 */
function ephemeralKey(epk: unknown, broker: KeyObject): KeyObject {
  if (!isObject(epk) || PRIVATE_MEMBERS.some((m) => Object.hasOwn(epk, m))) throw unopenable('epk invalid');
  // WebCrypto (under jose) refuses a public ECDH key with usages: refuse a non-empty key_ops the same way (RFC 7517 §4.3).
  if (Object.hasOwn(epk, 'key_ops') && !(Array.isArray(epk.key_ops) && epk.key_ops.length === 0))
    throw unopenable('epk key_ops');
  const { kty, crv, x, y } = epk;
  const isX25519 = broker.asymmetricKeyType === 'x25519';
  const isP256 = broker.asymmetricKeyType === 'ec' && broker.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  if (typeof x !== 'string') throw unopenable('epk x invalid');
  if (isX25519 && kty === 'OKP' && crv === 'X25519') {
    if (part(x, 'epk x').length !== 32) throw unopenable('epk x is not 32 bytes');
    return createPublicKey({ key: { kty, crv, x }, format: 'jwk' });
  }
  if (isP256 && kty === 'EC' && crv === 'P-256' && typeof y === 'string') {
    if (part(x, 'epk x').length !== 32 || part(y, 'epk y').length !== 32) throw unopenable('epk point invalid');
    return createPublicKey({ key: { kty, crv, x, y }, format: 'jwk' });
  }
  throw unopenable('epk is not on the broker key curve');
}

function partyInfo(header: Record<string, unknown>, name: 'apu' | 'apv'): Buffer {
  const v = header[name];
  if (v === undefined) return Buffer.alloc(0);
  if (typeof v !== 'string') throw unopenable(`${name} invalid`);
  return part(v, name);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const lengthPrefixed = (b: Uint8Array) => Buffer.concat([u32(b.length), b]);

/**
 * RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A §5.8.1) with SHA-256, one round
 * for a 256-bit key: AlgorithmID is `enc` for ECDH-ES (direct key agreement)
 * and `alg` for ECDH-ES+A256KW; PartyUInfo and PartyVInfo are apu and apv
 * (empty when absent); SuppPubInfo the key length in bits.
 */
function concatKdf256(z: Uint8Array, algorithmId: string, apu: Uint8Array, apv: Uint8Array): Buffer {
  return createHash('sha256')
    .update(u32(1))
    .update(z)
    .update(lengthPrefixed(Buffer.from(algorithmId, 'ascii')))
    .update(lengthPrefixed(apu))
    .update(lengthPrefixed(apv))
    .update(u32(256))
    .digest();
}

/** RFC 3394 AES key unwrap (A256KW, RFC 7518 §4.4): its integrity check fails on a wrong key or a changed wrapped key. */
function aesKeyUnwrap256(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  if (wrapped.length !== 40) throw unopenable('the encrypted key is not a wrapped 256-bit key');
  const d = createDecipheriv('id-aes256-wrap', kek, RFC3394_IV);
  return Buffer.concat([d.update(wrapped), d.final()]);
}

/** The content encryption key: ECDH-ES derives it, ECDH-ES+A256KW derives the key that unwraps it (RFC 7518 §4.6). */
function contentKey(jwe: ParsedJwe, parts: string[], broker: KeyObject): Buffer {
  const { header } = jwe;
  const publicKey = ephemeralKey(header.epk, broker);
  const [apu, apv] = [partyInfo(header, 'apu'), partyInfo(header, 'apv')];
  // jose refuses equal apu and apv (they name two different parties); so do we, to accept exactly what it accepted.
  if (header.apu !== undefined && header.apv !== undefined && apu.equals(apv)) throw unopenable('apu equals apv');
  // OpenSSL refuses an all-zero X25519 shared secret (a low-order point), as WebCrypto does.
  const z = diffieHellman({ privateKey: broker, publicKey });
  const direct = header.alg === 'ECDH-ES';
  const derived = concatKdf256(z, direct ? header.enc : header.alg, apu, apv);
  z.fill(0);
  if (direct) {
    if (parts[1] !== '') throw unopenable('ECDH-ES with an encrypted key');
    return derived;
  }
  const cek = aesKeyUnwrap256(derived, part(parts[1], 'encrypted key'));
  derived.fill(0);
  return cek;
}

function open(jwe: ParsedJwe, broker: KeyObject): Uint8Array {
  const parts = jwe.compact.split('.');
  if (parts.length !== 5) throw unopenable('not five parts');
  const iv = part(parts[2], 'iv');
  const ciphertext = part(parts[3], 'ciphertext');
  const tag = part(parts[4], 'tag');
  if (iv.length !== 12) throw unopenable('A256GCM needs a 96-bit IV');
  if (tag.length !== 16) throw unopenable('A256GCM needs a 128-bit tag');
  const cek = contentKey(jwe, parts, broker);
  try {
    // RFC 7516 §5.2 step 14: the AAD is ASCII(BASE64URL(UTF8(JWE Protected Header))).
    const gcm = createDecipheriv('aes-256-gcm', cek, iv, { authTagLength: 16 });
    gcm.setAAD(Buffer.from(parts[0] as string, 'ascii'));
    gcm.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([gcm.update(ciphertext), gcm.final()]));
  } finally {
    cek.fill(0);
  }
}

/**
 * Decrypt with the broker key named by kid. Every failure after the key is
 * found is the same `decrypt-failed` answer (no padding or key oracle); the
 * reason goes to the log only.
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
    return open(jwe, keyObjectOf(key));
  } catch (e) {
    if (e instanceof LiaisonError && e.code === 'decrypt-failed') throw e;
    throw new LiaisonError('decrypt-failed', {
      detail: `JWE decryption failed: ${(e as { code?: string }).code ?? 'error'}`,
      cause: e,
    });
  }
}
