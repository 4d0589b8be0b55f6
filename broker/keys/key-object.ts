import { KeyObject } from 'node:crypto';
import type { CryptoKey } from 'jose';

const converted = new WeakMap<object, KeyObject>();

/**
 * A keyring or registry CryptoKey as a node:crypto KeyObject, converted once
 * per key (KeyObject.from takes the CryptoKey's own handle: no export, so
 * Node 20's JWK-export hang after an X25519 key generation is not in reach).
 * Lets the hot path call node:crypto's synchronous primitives, which cost a
 * fraction of a WebCrypto call (bench/crypto-calls.ts).
 */
export function keyObjectOf(key: CryptoKey | KeyObject): KeyObject {
  if (key instanceof KeyObject) return key;
  let k = converted.get(key);
  if (!k) {
    k = KeyObject.from(key);
    converted.set(key, k);
  }
  return k;
}
