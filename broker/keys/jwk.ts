import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';

/**
 * The one way keys are made and exported here: WebCrypto through jose
 * (generateKeyPair + exportJWK). Node 20's KeyObject.export({format:'jwk'})
 * can deadlock right after generateKeyPairSync('x25519'), so it is never used.
 */
export type KeyKind = 'Ed25519' | 'ES256' | 'P-256-ECDH' | 'X25519';

const params: Record<KeyKind, { alg: string; options: { crv?: string } }> = {
  Ed25519: { alg: 'EdDSA', options: { crv: 'Ed25519' } },
  ES256: { alg: 'ES256', options: {} },
  'P-256-ECDH': { alg: 'ECDH-ES', options: { crv: 'P-256' } },
  X25519: { alg: 'ECDH-ES', options: { crv: 'X25519' } },
};

export interface KeyPairJwk {
  kid: string;
  use: 'sig' | 'enc';
  alg: string;
  publicJwk: JWK;
  privateJwk: JWK;
}

/** Make a key pair; the kid is the RFC 7638 thumbprint unless given. */
export async function makeKeyPair(kind: KeyKind, kid?: string): Promise<KeyPairJwk> {
  const p = params[kind];
  const { publicKey, privateKey } = await generateKeyPair(p.alg, { ...p.options, extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const id = kid ?? (await calculateJwkThumbprint(publicJwk));
  const use = p.alg === 'ECDH-ES' ? 'enc' : 'sig';
  return {
    kid: id,
    use,
    alg: p.alg,
    publicJwk: { ...publicJwk, kid: id, use, alg: p.alg },
    privateJwk: { ...privateJwk, kid: id, use, alg: p.alg },
  };
}

export function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, k: _k, ...pub } = jwk;
  return pub;
}

/** Import a JWK for one algorithm. Signing keys: EdDSA/ES256; encryption keys: ECDH-ES (also usable for ECDH-ES+A256KW). */
export async function importKey(jwk: JWK, alg: string): Promise<CryptoKey> {
  const key = await importJWK(jwk, alg);
  if (key instanceof Uint8Array) throw new Error('symmetric keys are not accepted');
  return key;
}

/** The JWS algorithms a public key may sign with. */
export function signatureAlgsFor(jwk: { kty?: string; crv?: string }): string[] {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return ['EdDSA', 'Ed25519'];
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return ['ES256'];
  return [];
}
