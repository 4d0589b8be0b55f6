import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import canonicalize from 'canonicalize';
import { keyStateAt, type AgencyKey } from '../registry/model.js';
import { signatureAlgsFor } from './jwk.js';

/**
 * A statement a recipient agency signs about a notice it received (a read
 * receipt, a complaint): a compact JWS over canonical JSON claims, with the
 * agency's own signing key, header exactly alg, kid and typ (explicit typing,
 * RFC 8725 §3.11). Both sides are here: the recipient signs, anyone holding
 * the recipient's key history (the sender, an auditor) verifies.
 */
export async function signRecipientJws(claims: object, signingKey: JWK, typ: string): Promise<string> {
  const alg = signingKey.crv === 'Ed25519' ? 'EdDSA' : 'ES256';
  const key = await importJWK(signingKey, alg);
  const payload = new TextEncoder().encode((canonicalize as unknown as (v: unknown) => string)(claims));
  return new CompactSign(payload).setProtectedHeader({ alg, kid: String(signingKey.kid), typ }).sign(key);
}

/** A key of the recipient's history: a registry key, or one of an audit archive's `agency_keys` (JOSE ones carry `jwk`). */
export type RecipientKey = Pick<AgencyKey, 'kid' | 'use' | 'status' | 'not_before' | 'not_after' | 'revoked_at'> & {
  jwk?: AgencyKey['jwk'] | undefined;
};

/**
 * Verify a recipient's statement of type `typ` against the recipient's key
 * history, with the key valid at `at` (when the broker received it). `what`
 * names the statement in errors ("read receipt", "complaint").
 */
export async function verifyRecipientJws(
  jws: string,
  recipientKeys: readonly RecipientKey[],
  at: Date,
  typ: string,
  what: string,
): Promise<{ payload: unknown; kid: string }> {
  const [h] = jws.split('.');
  let header: { kid?: unknown; typ?: unknown };
  try {
    header = JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as typeof header;
  } catch {
    throw new Error(`not a ${what} (the header is not JSON)`);
  }
  if (header.typ !== typ) throw new Error(`not a ${what} (typ ${String(header.typ)})`);
  const key = recipientKeys.find((k) => k.kid === header.kid && k.use === 'sig' && k.jwk !== undefined);
  if (!key?.jwk) throw new Error(`the ${what} is not signed by a key of this agency`);
  if (keyStateAt(key, at) !== 'active') throw new Error('the signing key was not valid at that time');
  const algorithms = signatureAlgsFor(key.jwk);
  const { payload } = await compactVerify(jws, await importJWK(key.jwk as JWK, algorithms[0]), { algorithms });
  return { payload: JSON.parse(new TextDecoder().decode(payload)) as unknown, kid: key.kid };
}
