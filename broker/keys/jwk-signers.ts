import type { CryptoKey } from 'jose';
import type { ResolvedSigner } from '../core/envelope.js';
import { LiaisonError } from '../core/errors.js';
import { importKey, signatureAlgsFor } from './jwk.js';
import { keyStateAt, type RegistrySnapshot } from '../registry/model.js';

/**
 * Resolves a JWS kid against the live registry: the key must exist, be a
 * signing key, and be active at the time of the request. Imported keys are
 * cached per registry snapshot, so a registry change (a revocation) is never
 * masked by the cache.
 */
export function createSignerResolver(snapshot: () => RegistrySnapshot, now: () => Date = () => new Date()) {
  let cachedFor: RegistrySnapshot | undefined;
  let cache = new Map<string, Promise<CryptoKey>>();
  return async function resolveSigner(kid: string): Promise<ResolvedSigner> {
    const snap = snapshot();
    if (snap !== cachedFor) {
      cachedFor = snap;
      cache = new Map();
    }
    const found = snap.key(kid);
    if (!found || found.key.use !== 'sig')
      throw new LiaisonError('key-unknown', { publicDetail: 'the JWS kid is not a registered agency signing key' });
    const state = keyStateAt(found.key, now());
    if (state !== 'active') throw new LiaisonError('key-revoked', { detail: `signer key ${kid} is ${state}` });
    const algorithms = signatureAlgsFor(found.key.jwk);
    if (algorithms.length === 0)
      throw new LiaisonError('key-unknown', { detail: `registered key ${kid} has an unsupported type` });
    let key = cache.get(kid);
    if (!key) {
      key = importKey(found.key.jwk, algorithms[0] as string);
      cache.set(kid, key);
    }
    try {
      return { kid, agencyId: found.agency.id, key: await key, algorithms };
    } catch (e) {
      cache.delete(kid);
      throw new LiaisonError('key-unknown', { detail: `registered key ${kid} cannot be imported`, cause: e });
    }
  };
}
