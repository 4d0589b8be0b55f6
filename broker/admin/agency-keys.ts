import { importJWK } from 'jose';
import { readKey } from 'openpgp';
import { LiaisonError } from '../core/errors.js';
import type { Agency, AgencyKey, OpenPgpAgencyKey, RegistryJwk, RegistrySnapshot } from '../registry/model.js';
import type { AddedAgencyKey, RegistryEvent } from './registry-event.js';

/**
 * Agency key changes as pure functions: checking a requested key, and applying
 * an event to an agency record. Applying is idempotent (a key already added is
 * not added twice, a revocation already made is kept as it was), so a change
 * whose event is logged can be applied again after a crash or a concurrent
 * write without changing its meaning.
 */

/** A new key as an operator submits it. */
export type NewAgencyKey =
  | { kid: string; use: 'sig' | 'enc'; jwk: RegistryJwk; not_before?: string; not_after?: string }
  | { kid: string; use: 'sig' | 'enc'; format: 'openpgp'; armored: string; not_before?: string; not_after?: string };

const conflict = (publicDetail: string) => new LiaisonError('key-conflict', { publicDetail });
const bad = (publicDetail: string) => new LiaisonError('bad-request', { publicDetail });

const allKeys = (a: Agency): (AgencyKey | OpenPgpAgencyKey)[] => [...a.keys, ...(a.openpgp_keys ?? [])];

/** Whether any agency already lists this kid (a kid claimed twice would name no key at all). */
function kidTaken(snapshot: RegistrySnapshot, kid: string): boolean {
  return snapshot.agencies().some((a) => allKeys(a).some((k) => k.kid.toUpperCase() === kid.toUpperCase()));
}

/** Check a submitted key: public only, importable, its kid free, and return its registry form. */
export async function checkNewKey(snapshot: RegistrySnapshot, key: NewAgencyKey): Promise<AddedAgencyKey> {
  if (kidTaken(snapshot, key.kid)) throw conflict(`kid ${key.kid} is already registered`);
  const window = {
    ...(key.not_before ? { not_before: key.not_before } : {}),
    ...(key.not_after ? { not_after: key.not_after } : {}),
  };
  if (key.not_before && key.not_after && Date.parse(key.not_after) <= Date.parse(key.not_before))
    throw bad('not_after must be after not_before');
  if ('format' in key) {
    let parsed;
    try {
      parsed = await readKey({ armoredKey: key.armored });
    } catch {
      throw bad('armored is not an OpenPGP public key block');
    }
    if (parsed.isPrivate()) throw bad('send the public key only');
    if (parsed.getFingerprint().toUpperCase() !== key.kid.toUpperCase()) throw bad("kid must be the key's fingerprint");
    return {
      kid: parsed.getFingerprint().toUpperCase(),
      use: key.use,
      format: 'openpgp',
      armored: parsed.armor(),
      ...window,
    };
  }
  const jwk = key.jwk as unknown as Record<string, unknown>;
  for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) if (p in jwk) throw bad('send the public key only');
  if (jwk.kid !== undefined && jwk.kid !== key.kid) throw bad('jwk.kid differs from kid');
  const alg = key.use === 'sig' ? (jwk.crv === 'Ed25519' ? 'EdDSA' : 'ES256') : 'ECDH-ES';
  try {
    await importJWK({ ...key.jwk }, alg);
  } catch {
    throw bad('jwk is not a usable public key for its use');
  }
  return { kid: key.kid, use: key.use, jwk: { ...key.jwk, kid: key.kid }, ...window };
}

function withKey(a: Agency, k: AddedAgencyKey): Agency {
  if (allKeys(a).some((x) => x.kid === k.kid)) return a;
  if ('format' in k) return { ...a, openpgp_keys: [...(a.openpgp_keys ?? []), { ...k, status: 'active' }] };
  return { ...a, keys: [...a.keys, { ...k, status: 'active' }] };
}

function mapKey(a: Agency, kid: string, f: <K extends AgencyKey | OpenPgpAgencyKey>(k: K) => K): Agency {
  return {
    ...a,
    keys: a.keys.map((k) => (k.kid === kid ? f(k) : k)),
    ...(a.openpgp_keys ? { openpgp_keys: a.openpgp_keys.map((k) => (k.kid === kid ? f(k) : k)) } : {}),
  };
}

/** The agency record with these keys added, active (a key it lists already is left as it is). */
export function withKeys(a: Agency, added: readonly AddedAgencyKey[]): Agency {
  return added.reduce(withKey, a);
}

/** The agency record after an agency-key event. */
export function applyAgencyEvent(a: Agency, e: RegistryEvent): Agency {
  let next = withKeys(a, (e.added ?? []) as AddedAgencyKey[]);
  for (const r of e.retired ?? []) {
    next = mapKey(next, r.kid, (k) =>
      k.not_after !== undefined && Date.parse(k.not_after) <= Date.parse(r.until) ? k : { ...k, not_after: r.until },
    );
  }
  for (const r of e.revoked ?? []) {
    next = mapKey(next, r.kid, (k) =>
      k.status === 'revoked' ? k : { ...k, status: 'revoked', revoked_at: r.revoked_at },
    );
  }
  return next;
}

/** The key of `kid` in the agency, or a 404. */
export function existingKey(a: Agency, kid: string): AgencyKey | OpenPgpAgencyKey {
  const k = allKeys(a).find((x) => x.kid === kid);
  if (!k) throw new LiaisonError('not-found', { publicDetail: `agency ${a.id} has no key ${kid}` });
  return k;
}
