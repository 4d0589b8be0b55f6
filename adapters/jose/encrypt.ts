import { compactDecrypt, flattenedDecrypt, importJWK, type FlattenedJWE, type JWK } from 'jose';
import { LiaisonError } from '../../broker/core/errors.js';
import type { RegistryJwk } from '../../broker/registry/model.js';
import { encryptDeliveryJwes, importRecipientKey, JWE_ALG, JWE_ENC, type RecipientKey } from './delivery-jwe.js';

/** Key management and content encryption of every delivery (RFC 7518 §4.6, §5.3). */
export const DELIVERY_ALG = JWE_ALG;
export const DELIVERY_ENC = JWE_ENC;
export const DELIVERY_TYP = 'liaison-delivery+jwe';
/**
 * `cty` names the inner content: `JWT` for the origin's compact JWS (nested JOSE,
 * RFC 7516 §4.1.12), `pgp-signed` for an OpenPGP-origin notice, whose stored
 * signed message (armored one-pass signed message) is the plaintext.
 */
/** One per registered format (test/envelope-formats.test.ts). */
export const DELIVERY_CTY = { jose: 'JWT', openpgp: 'pgp-signed' } as const;

/** The `cty` for a notice of that origin format; a format without one is `format-unknown`. */
function deliveryCty(format: string): string {
  if (!Object.hasOwn(DELIVERY_CTY, format))
    throw new LiaisonError('format-unknown', {
      detail: `no delivery cty for envelope format ${JSON.stringify(format)}`,
    });
  return (DELIVERY_CTY as Readonly<Record<string, string>>)[format]!;
}

const keyFields = (jwk: RegistryJwk) => JSON.stringify([jwk.kty, jwk.crv, jwk.x, jwk.y]);
/**
 * Imported recipient keys, keyed by the registry's own JWK object: a registry
 * change replaces the record (a new snapshot holds new objects), so the cache
 * never outlives it, and an entry is dropped with its snapshot (WeakMap). The
 * key material is compared on every hit as well, so even a JWK changed in place
 * is imported again rather than served stale.
 */
const imported = new WeakMap<RegistryJwk, { fields: string; key: RecipientKey }>();

function recipientKey(jwk: RegistryJwk): RecipientKey {
  const fields = keyFields(jwk);
  const hit = imported.get(jwk);
  if (hit && hit.fields === fields) return hit.key;
  // A key that cannot be imported throws and is not cached: the next delivery tries again (and fails the same way, visibly).
  const key = importRecipientKey(jwk);
  imported.set(jwk, { fields, key });
  return key;
}

/**
 * The same import, memoised by the key material itself (kty, crv, x, y) for
 * callers that get a fresh copy of the registry's JWK with every job (the
 * sealing worker, seal-worker.ts): importing a public key is a pure function of
 * its material, so this never serves a key other than the one asked for. Which
 * key a recipient gets is the router's decision (plan.ts), made per notice.
 * Bounded: cleared when it reaches MATERIAL_CACHE_MAX keys.
 */
const MATERIAL_CACHE_MAX = 4096;
const byMaterial = new Map<string, RecipientKey>();

export function recipientKeyByMaterial(jwk: RegistryJwk): RecipientKey {
  const fields = keyFields(jwk);
  const hit = byMaterial.get(fields);
  if (hit) return hit;
  if (byMaterial.size >= MATERIAL_CACHE_MAX) byMaterial.clear();
  const key = importRecipientKey(jwk);
  byMaterial.set(fields, key);
  return key;
}

/** The protected header every delivery of a notice shares; alg, kid and epk are each recipient's (delivery-jwe.ts). */
const sharedHeader = (noticeId: string, format: string) => ({
  typ: DELIVERY_TYP,
  cty: deliveryCty(format),
  'liaison-notice-id': noticeId,
});

/**
 * Encrypt the origin's signed notice, exactly as stored, to one recipient's
 * encryption key: a JWE (flattened JSON serialization, as its JSON text) whose
 * plaintext is the origin's compact JWS, so the recipient verifies the origin's
 * signature itself (the broker cannot forge it). `cty` says which: the origin's
 * format (`DELIVERY_CTY`). `keyOf`: how the JWK is imported (cached per
 * registry JWK object by default).
 */
export async function encryptDelivery(
  signed: Uint8Array,
  recipient: { kid: string; jwk: RegistryJwk },
  noticeId: string,
  format: string = 'jose',
  keyOf: (jwk: RegistryJwk) => RecipientKey = recipientKey,
): Promise<string> {
  return sealJwes(signed, [recipient], noticeId, format, keyOf)[0]!;
}

/** Synchronous node:crypto (delivery-jwe.ts): on the sealing worker, off the event loop that serves ingest. */
function sealJwes(
  signed: Uint8Array,
  recipients: readonly { kid: string; jwk: RegistryJwk }[],
  noticeId: string,
  format: string,
  keyOf: (jwk: RegistryJwk) => RecipientKey,
): string[] {
  const header = sharedHeader(noticeId, format);
  return encryptDeliveryJwes(
    signed,
    recipients.map((r) => ({ kid: r.kid, key: keyOf(r.jwk) })),
    header,
  );
}

const ascii = new TextEncoder();

/**
 * One notice's JOSE deliveries, one JWE per recipient in order, as the bytes to
 * publish (a JWE's JSON text is ASCII): the notice encrypted once, its content
 * key wrapped for each recipient (delivery-jwe.ts says why that is sound).
 * Each comes in an ArrayBuffer of its own (TextEncoder's), so the sealing
 * worker can transfer it rather than copy it.
 */
export async function encryptDeliveries(
  signed: Uint8Array,
  recipients: readonly { kid: string; jwk: RegistryJwk }[],
  noticeId: string,
  format: string,
  keyOf: (jwk: RegistryJwk) => RecipientKey = recipientKey,
): Promise<Uint8Array[]> {
  if (recipients.length === 0) return [];
  return sealJwes(signed, recipients, noticeId, format, keyOf).map((j) => ascii.encode(j));
}

/**
 * The recipient's side: decrypt a delivery with its own private encryption key;
 * returns the origin's signed bytes, the JOSE Header (all members) and the
 * protected header alone (the members under the AAD: read `cty` there). A
 * delivery is a flattened JSON JWE's text, or, stored before one content
 * encryption per notice, a compact JWE: both open here.
 */
export async function decryptDelivery(
  jwe: string,
  privateJwk: JWK,
): Promise<{ signed: Uint8Array; header: Record<string, unknown>; protectedHeader: Record<string, unknown> }> {
  const key = await importJWK({ ...privateJwk, alg: DELIVERY_ALG }, DELIVERY_ALG);
  const options = { keyManagementAlgorithms: [DELIVERY_ALG], contentEncryptionAlgorithms: [DELIVERY_ENC] };
  if (!jwe.startsWith('{')) {
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, key, options);
    return { signed: plaintext, header: protectedHeader, protectedHeader };
  }
  const r = await flattenedDecrypt(parseFlattened(jwe), key, options);
  // jose has checked that the headers' member names are disjoint.
  const protectedHeader = r.protectedHeader ?? {};
  return {
    signed: r.plaintext,
    header: { ...protectedHeader, ...r.sharedUnprotectedHeader, ...r.unprotectedHeader },
    protectedHeader,
  };
}

/** The JSON text of one flattened JWE: an object (jose checks its members); a general JWE (`recipients`) is not one. */
function parseFlattened(text: string): FlattenedJWE {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new TypeError('the delivery is neither a compact JWE nor JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.hasOwn(v, 'recipients'))
    throw new TypeError('the delivery is not a flattened JWE');
  return v as FlattenedJWE;
}
