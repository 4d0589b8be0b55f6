import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';

/** An agency's client assertion for reads: a JWT signed by its key, aud = the broker id, 2 minutes, unique jti. */
export async function makeClientAssertion(
  agencyId: string,
  signingKey: JWK,
  brokerId: string,
  lifetimeSeconds = 120,
): Promise<string> {
  const alg = signingKey.alg ?? (signingKey.crv === 'Ed25519' ? 'EdDSA' : 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: signingKey.kid, typ: 'JWT' })
    .setIssuer(agencyId)
    .setSubject(agencyId)
    .setAudience(brokerId)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetimeSeconds)
    .setJti(randomUUID())
    .sign(await importJWK(signingKey, alg));
}
