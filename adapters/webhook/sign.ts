import canonicalize from 'canonicalize';
import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import { CodedError, type CodeOf } from '../../broker/core/errors.js';
import type { InboxDelivery } from '../../broker/core/inbox-delivery.js';
import type { DeliverySigner } from '../transport/contract.js';

/** `typ` of the broker-signed webhook body (RFC 7515 §4.1.9; explicit typing as in RFC 8725 §3.11). */
export const WEBHOOK_TYP = 'liaison-webhook+jws';
/** Media type of the POST body: a compact JWS. */
export const WEBHOOK_MEDIA_TYPE = 'application/jose';

/**
 * What a webhook POST carries: the delivery exactly as `GET /v1/inbox` shows it,
 * plus the broker's id (`iss`) and the recipient agency, so that a body captured
 * for one agency cannot be replayed to another as if meant for it.
 */
export interface WebhookClaims extends InboxDelivery {
  iss: string;
  recipient: string;
}

/** The POST body: a compact JWS by the broker's signing key over the canonical (RFC 8785) claims. */
export async function signWebhook(key: DeliverySigner['key'], claims: WebhookClaims): Promise<string> {
  const payload = new TextEncoder().encode((canonicalize as unknown as (v: unknown) => string)(claims));
  return new CompactSign(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: WEBHOOK_TYP })
    .sign(key.privateKey);
}

export class WebhookVerificationError extends CodedError<CodeOf<'webhook'>> {}

/**
 * The receiver's side: verify a webhook body against the broker's JWKS
 * (`GET /v1/keys`, fetched and pinned by the receiver ahead of time, never from
 * the request), check `typ`, the issuer and that it is addressed to `recipient`.
 * Then open `jwe` with broker/agency-client/open-delivery.ts to verify the origin itself.
 */
export async function verifyWebhook(
  body: string,
  jwks: { keys: JWK[]; broker: string },
  recipient: string,
): Promise<WebhookClaims> {
  let payload: Uint8Array;
  let typ: unknown;
  try {
    const r = await compactVerify(
      body,
      async (h) => {
        const jwk = jwks.keys.find(
          (k) => k.kid === h.kid && k.kty === 'OKP' && k.crv === 'Ed25519' && (k.use === undefined || k.use === 'sig'),
        );
        if (!jwk) throw new WebhookVerificationError('key-unknown', 'the body is not signed by a key of the broker');
        return importJWK(jwk, 'EdDSA');
      },
      { algorithms: ['EdDSA'] },
    );
    payload = r.payload;
    typ = r.protectedHeader.typ;
  } catch (e) {
    if (e instanceof WebhookVerificationError) throw e;
    throw new WebhookVerificationError(
      'signature-invalid',
      `the broker signature does not verify: ${(e as Error).message}`,
    );
  }
  if (typ !== WEBHOOK_TYP) throw new WebhookVerificationError('signature-invalid', `typ is not ${WEBHOOK_TYP}`);
  const claims = JSON.parse(new TextDecoder().decode(payload)) as WebhookClaims;
  if (claims.iss !== jwks.broker)
    throw new WebhookVerificationError('signature-invalid', 'the body was issued by another broker');
  if (claims.recipient !== recipient)
    throw new WebhookVerificationError('wrong-recipient', 'the body is addressed to another agency');
  return claims;
}
