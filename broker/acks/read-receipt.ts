import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import canonicalize from 'canonicalize';
import { signatureAlgsFor } from '../keys/jwk.js';
import { keyStateAt, type AgencyKey } from '../registry/model.js';

/** `typ` of a recipient's read receipt (explicit typing, RFC 8725 §3.11). */
export const ACK_TYP = 'liaison-ack+jws';

/** What a recipient signs to acknowledge a delivery. Exactly these members. */
export interface AckClaims {
  notice_id: string;
  /** The DELIVERIES cursor of the delivery acknowledged. */
  cursor: number;
  /** Lower-case hex SHA-256 of the origin's signed notice (the JWS inside the delivery). */
  sha256: string;
  /** RFC 3339, the recipient's clock. */
  acked_at: string;
}

/** The recipient's side: sign a read receipt with the agency's own signing key (private JWK). */
export async function signAck(claims: AckClaims, signingKey: JWK): Promise<string> {
  const alg = signingKey.crv === 'Ed25519' ? 'EdDSA' : 'ES256';
  const key = await importJWK(signingKey, alg);
  const payload = new TextEncoder().encode((canonicalize as unknown as (v: unknown) => string)(claims));
  return new CompactSign(payload).setProtectedHeader({ alg, kid: String(signingKey.kid), typ: ACK_TYP }).sign(key);
}

/**
 * Anyone's side (the sender, an auditor): verify a read receipt against the
 * recipient's key history (GET /v1/registry/agencies/:id/keys), with the key
 * valid at `at` (when the broker received the receipt).
 */
export async function verifyAck(
  jws: string,
  recipientKeys: readonly AgencyKey[],
  at: Date,
): Promise<{ claims: AckClaims; kid: string }> {
  const [h] = jws.split('.');
  const header = JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as { kid?: unknown; typ?: unknown };
  if (header.typ !== ACK_TYP) throw new Error(`not a read receipt (typ ${String(header.typ)})`);
  const key = recipientKeys.find((k) => k.kid === header.kid && k.use === 'sig');
  if (!key) throw new Error('the receipt is not signed by a key of this agency');
  if (keyStateAt(key, at) !== 'active') throw new Error('the signing key was not valid at that time');
  const algorithms = signatureAlgsFor(key.jwk);
  const { payload } = await compactVerify(jws, await importJWK(key.jwk as JWK, algorithms[0]), { algorithms });
  return { claims: JSON.parse(new TextDecoder().decode(payload)) as AckClaims, kid: key.kid };
}
