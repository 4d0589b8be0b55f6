import { currentEncryptionKey } from '../../broker/registry/model.js';
import type { EnvelopeFormat } from '../format.js';
import { joseEnvelope } from './index.js';
import { DeliverySealer } from './seal-pool.js';
import { joseStoredSignatures } from './stored-signatures.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const COMPACT_JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const B64U = /^[A-Za-z0-9_-]+$/;
const FLATTENED_MEMBERS = ['ciphertext', 'encrypted_key', 'header', 'iv', 'protected', 'tag'].join();

/**
 * Why a stored JOSE delivery is not one the router could have written; null
 * when it is: a flattened JSON JWE with exactly the members the router writes
 * (delivery-jwe.ts), or a compact JWE (stored before one content encryption
 * per notice). Only the shape: the recipient's JOSE library checks the rest.
 */
function deliveryDefect(body: Uint8Array): string | null {
  const text = Buffer.from(body).toString('latin1');
  if (!text.startsWith('{')) return COMPACT_JWE.test(text) ? null : 'body is not a JWE';
  let jwe: unknown;
  try {
    jwe = JSON.parse(text);
  } catch {
    return 'body is not a JWE';
  }
  if (!isObj(jwe) || Object.keys(jwe).sort().join() !== FLATTENED_MEMBERS || !isObj(jwe.header))
    return 'body is not a flattened JWE';
  const parts = [jwe.protected, jwe.encrypted_key, jwe.iv, jwe.ciphertext, jwe.tag];
  return parts.every((p) => typeof p === 'string' && B64U.test(p)) ? null : 'body is not a flattened JWE';
}

/**
 * JOSE: compact JWE (to the broker) ⊃ compact JWS ⊃ notice JSON in; JWK keys in
 * an agency's `keys`; deliveries are JWEs to the agency's current encryption
 * JWK, one content encryption per notice (flattened JSON serialization, each
 * recipient's its own), sealed on a worker thread (seal-pool.ts).
 */
export const joseFormat = {
  name: 'jose',
  opener: () => joseEnvelope,
  agencyKeysField: 'keys',
  keyMaterial(record) {
    if (!isObj(record.jwk)) return undefined;
    const j = record.jwk;
    const jwk = Object.fromEntries(
      ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'].filter((f) => typeof j[f] === 'string').map((f) => [f, j[f]]),
    );
    return { fields: { jwk: jwk as { kty: string } }, id: `jwk:${JSON.stringify([jwk.kty, jwk.crv, jwk.x, jwk.y])}` };
  },
  storedSignatures: joseStoredSignatures,
  deliveryKey(agency, at) {
    const key = currentEncryptionKey(agency.keys, at);
    return key && { kid: key.kid, jwk: key.jwk };
  },
  deliverySealer() {
    const pool = new DeliverySealer();
    return {
      get threadId() {
        return pool.threadId;
      },
      async seal(signed, recipients, meta) {
        const bodies = await pool.seal(
          signed,
          recipients.map((r) => ({ kid: r.kid, jwk: r.jwk ?? { kty: '' } })),
          meta.noticeId,
          meta.format,
        );
        return bodies.map((body, i) => ({ body, kid: recipients[i]!.kid }));
      },
      close: () => pool.close(),
    };
  },
  inboxDelivery: {
    field: 'jwe',
    defect: deliveryDefect,
  },
} as const satisfies EnvelopeFormat<'jose'>;
