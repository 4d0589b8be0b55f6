/**
 * The gateway's signature over one log entry: a JWS with a detached payload
 * (RFC 7515 Appendix F), compact form `protected..signature`, the payload
 * being the exact entry bytes the Merkle tree hashes (standard base64url
 * payload encoding in the signing input, no `b64` or `crit`).
 *
 *   protected header: {"alg":"EdDSA","kid":"<broker signing kid>","typ":"liaison-log-entry+jws"}
 *
 * The dedicated `typ` keeps every other broker JWS (receipts, registry
 * events) from passing as an entry signature, and an entry signature from
 * passing as anything else. Signed with the broker's current signing key at
 * the places that make new entries (broker/log/notice-writer.ts, acks, admin), and
 * carried in the LOG message header `Liaison-Log-Entry-Signature`; verified
 * by the checkpointer before it folds an entry and by `liaison audit verify`.
 *
 * node:crypto's one-shot Ed25519 sign/verify (synchronous, no WebCrypto
 * promise round trip): one signature per entry on the ingest hot path, one
 * verification per entry in the checkpointer.
 */

import { Buffer } from 'node:buffer';
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

import { CodedError, type CodeOf } from '../core/errors.js';
import type { BrokerSigningKey } from '../keys/broker-keys.js';
import { keyObjectOf } from '../keys/key-object.js';

/** Header (on LOG, and on the NOTICES/ACKS/REGISTRY_EVENTS message that carries the entry) holding the entry's signature. */
export const ENTRY_SIGNATURE_HEADER = 'Liaison-Log-Entry-Signature';
/** The JWS `typ` of an entry signature. */
export const ENTRY_SIGNATURE_TYP = 'liaison-log-entry+jws';

export type EntrySignatureFailure = CodeOf<'entry-signature'>;

export class EntrySignatureError extends CodedError<EntrySignatureFailure> {
  constructor(
    code: EntrySignatureFailure,
    message: string,
    /** Signed under a kid the key list does not hold (a rotation not yet seen, or a forgery). */
    readonly unknownKid = false,
  ) {
    super(code, message);
  }
}

const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
/** Sign entry bytes: returns the compact detached JWS `protected..signature`. */
const protectedHeaders = new Map<string, string>();

export function signEntry(key: BrokerSigningKey, bytes: Uint8Array): string {
  let protectedB64 = protectedHeaders.get(key.kid);
  if (!protectedB64) {
    protectedB64 = b64u(JSON.stringify({ alg: 'EdDSA', kid: key.kid, typ: ENTRY_SIGNATURE_TYP }));
    if (protectedHeaders.size > 64) protectedHeaders.clear();
    protectedHeaders.set(key.kid, protectedB64);
  }
  const sig = sign(null, Buffer.from(`${protectedB64}.${b64u(bytes)}`), keyObjectOf(key.privateKey));
  return `${protectedB64}..${b64u(sig)}`;
}

const B64U = /^[A-Za-z0-9_-]+$/;

/**
 * Verifies entry signatures against a list of broker signing keys (the key
 * history: current and retired). `keys` may be a function for a live keyring;
 * the public key objects are rebuilt when the list changes.
 */
export class EntrySignatureVerifier {
  readonly #keys: () => readonly JWK[];
  #cache: { list: readonly JWK[]; byKid: Map<string, KeyObject | null> } | undefined;

  constructor(keys: readonly JWK[] | (() => readonly JWK[])) {
    this.#keys = typeof keys === 'function' ? keys : () => keys;
  }

  #key(kid: string): KeyObject | undefined {
    const list = this.#keys();
    if (this.#cache?.list !== list) this.#cache = { list, byKid: new Map() };
    const byKid = this.#cache.byKid;
    if (!byKid.has(kid)) {
      const matches = list.filter((j) => j.kid === kid);
      let k: KeyObject | null = null;
      // An ambiguous kid verifies nothing.
      const jwk = matches.length === 1 ? matches[0] : undefined;
      if (jwk && jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.x === 'string') {
        try {
          k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
        } catch {
          k = null;
        }
      }
      byKid.set(kid, k);
    }
    return byKid.get(kid) ?? undefined;
  }

  /** The signing kid when `signature` is a valid entry signature over `bytes`; throws EntrySignatureError otherwise. */
  verify(bytes: Uint8Array, signature: string | undefined | null): string {
    if (signature === undefined || signature === null || signature === '')
      throw new EntrySignatureError('entry-unsigned', 'the entry carries no signature');
    const bad = (why: string) => new EntrySignatureError('entry-signature-invalid', why);
    if (signature.length > 2048) throw bad('the signature is too long');
    const parts = signature.split('.');
    if (parts.length !== 3 || parts[1] !== '' || !B64U.test(parts[0]!) || !B64U.test(parts[2]!))
      throw bad('not a compact JWS with a detached payload');
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw bad('the protected header is not JSON');
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      throw bad('the protected header is not an object');
    if (header.typ !== ENTRY_SIGNATURE_TYP) throw bad(`typ is not ${ENTRY_SIGNATURE_TYP}`);
    if (header.alg !== 'EdDSA') throw bad('alg is not EdDSA');
    if ('crit' in header || 'b64' in header) throw bad('crit and b64 are not accepted');
    if (typeof header.kid !== 'string') throw bad('no kid');
    const key = this.#key(header.kid);
    if (!key) throw new EntrySignatureError('entry-signature-invalid', 'its kid is not a broker signing key', true);
    const sig = Buffer.from(parts[2]!, 'base64url');
    if (sig.length !== 64 || !verify(null, Buffer.from(`${parts[0]}.${b64u(bytes)}`), key, sig))
      throw bad('the signature does not verify over the entry bytes');
    return header.kid;
  }
}
