import { CompactEncrypt, CompactSign, importJWK, type JWK } from 'jose';

/**
 * The agency side of a JOSE envelope: sign the notice bytes with the agency's
 * key (compact JWS), then encrypt that JWS to a broker encryption key (compact
 * JWE). Used by the CLI, the tests and the benchmark; any JOSE library that
 * does the same interoperates (see test/interop).
 */
export interface SealOptions {
  signingKey: JWK; // private, with kid and alg (EdDSA or ES256)
  brokerKey: JWK; // public broker encryption key from GET /v1/keys
  keyManagement?: 'ECDH-ES+A256KW' | 'ECDH-ES';
  jwsHeader?: Record<string, unknown>;
  jweHeader?: Record<string, unknown>;
}

export async function signNotice(
  payload: Uint8Array,
  signingKey: JWK,
  extraHeader: Record<string, unknown> = {},
): Promise<string> {
  const alg = signingKey.alg ?? (signingKey.crv === 'Ed25519' ? 'EdDSA' : 'ES256');
  const key = await importJWK(signingKey, alg);
  return new CompactSign(payload)
    .setProtectedHeader({ alg, kid: signingKey.kid, typ: 'liaison-notice+jws', ...extraHeader })
    .sign(key);
}

export async function encryptToBroker(
  jws: string,
  brokerKey: JWK,
  keyManagement: 'ECDH-ES+A256KW' | 'ECDH-ES' = 'ECDH-ES+A256KW',
  extraHeader: Record<string, unknown> = {},
): Promise<string> {
  const key = await importJWK(brokerKey, keyManagement);
  return new CompactEncrypt(new TextEncoder().encode(jws))
    .setProtectedHeader({ alg: keyManagement, enc: 'A256GCM', kid: brokerKey.kid, cty: 'JWT', ...extraHeader })
    .encrypt(key);
}

export async function sealNotice(payload: Uint8Array, opts: SealOptions): Promise<{ jwe: string; jws: string }> {
  const jws = await signNotice(payload, opts.signingKey, opts.jwsHeader);
  const jwe = await encryptToBroker(jws, opts.brokerKey, opts.keyManagement, opts.jweHeader);
  return { jwe, jws };
}

/** Pick the broker encryption key for a curve from a JWKS. */
export function brokerEncryptionKey(jwks: { keys: JWK[] }, crv: 'X25519' | 'P-256' = 'X25519'): JWK {
  const k = jwks.keys.find((j) => j.use === 'enc' && j.crv === crv);
  if (!k) throw new Error(`the broker publishes no ${crv} encryption key`);
  return k;
}
