import type { EnvelopeAdapter, OpenedEnvelope, ResolvedSigner } from '../../broker/core/envelope.js';
import { LiaisonError } from '../../broker/core/errors.js';
import { parseProtectedHeader } from '../../broker/core/jose-header.js';
import { sha256Hex } from '../../broker/core/sha256.js';
import { parseStrictJson } from '../../broker/core/strict-json.js';
import type { RoutingHeader, RoutingHeaderValidator } from '../../broker/schemas/routing-header-validator.js';
import { JWS_ALGS, verifyCompactJws } from '../jose/verify-jws.js';
import { E2E_MEDIA_TYPE, parseE2eBody, parseE2eEnvelope, ROUTING_HEADER_TYP } from './wire.js';

/**
 * The routing header's JWS: a compact JWS of type ROUTING_HEADER_TYP by a
 * registered, active signing key (the notice JWS's key rules); its payload.
 */
export async function verifyRoutingHeaderJws(
  jws: string,
  resolveSigner: (kid: string) => Promise<ResolvedSigner>,
): Promise<{ payload: Uint8Array; signer: ResolvedSigner }> {
  const parts = jws.split('.');
  if (parts.length !== 3)
    throw new LiaisonError('envelope-malformed', { publicDetail: 'header must be a compact JWS' });
  const h = parseProtectedHeader(parts[0]!, {
    what: 'JWS',
    allowedAlgs: JWS_ALGS,
    allowedParams: ['alg', 'kid', 'typ'],
  });
  if (h.typ !== ROUTING_HEADER_TYP)
    throw new LiaisonError('envelope-malformed', { publicDetail: `the header JWS typ must be ${ROUTING_HEADER_TYP}` });
  const { payload, signer } = await verifyCompactJws(new TextEncoder().encode(jws), resolveSigner);
  return { payload, signer };
}

/**
 * The signed routing header's payload: strict JSON, valid against the routing
 * header schema, and binding this body (body_sha256 = SHA-256 of the body
 * string). Shared by both end-to-end forms (jose-e2e, openpgp-e2e).
 */
export function checkRoutingHeader(payload: Uint8Array, body: string, validate: RoutingHeaderValidator): RoutingHeader {
  let header: unknown;
  try {
    header = parseStrictJson(payload, { maxBytes: 64 * 1024, maxDepth: 4 });
  } catch (e) {
    throw new LiaisonError('json-invalid', { publicDetail: 'the routing header is not strict JSON', cause: e });
  }
  const checked = validate(header);
  if (!checked.ok) throw new LiaisonError('schema-invalid', { errors: checked.errors });
  if (sha256Hex(Buffer.from(body, 'utf8')) !== (header as RoutingHeader).body_sha256)
    throw new LiaisonError('body-hash-mismatch', {
      publicDetail: 'body_sha256 is not the SHA-256 of the body string',
    });
  return header as RoutingHeader;
}

/**
 * Ingest's side of jose-e2e: checks everything but the content, which it
 * cannot open. The routing header's signature (by the origin's registered
 * key) and schema; that it binds this body (body_sha256); the body's JWE
 * shape. What the envelope returns for the pipeline: the posted bytes as
 * `signed` (stored and logged as received), the routing header as `payload`,
 * and the kids the body is sealed for (checked against the recipients after
 * the sharing rules, broker/ingest/e2e-recipients.ts).
 */
export function e2eEnvelope(validate: RoutingHeaderValidator, maxEnvelopeBytes: number): EnvelopeAdapter {
  return {
    format: 'jose-e2e',
    mediaTypes: [E2E_MEDIA_TYPE],
    async open(text, ctx): Promise<OpenedEnvelope> {
      const env = parseE2eEnvelope(text, maxEnvelopeBytes);
      const { payload, signer } = await verifyRoutingHeaderJws(env.header, (kid) => ctx.resolveSigner(kid));
      checkRoutingHeader(payload, env.body, validate);
      const body = parseE2eBody(env.body, maxEnvelopeBytes);
      return {
        format: 'jose-e2e',
        signed: new TextEncoder().encode(text),
        payload,
        signer: { kid: signer.kid, agencyId: signer.agencyId },
        sealedFor: body.recipients.map((r) => r.kid),
      };
    },
  };
}
