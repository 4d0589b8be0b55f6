import { currentEncryptionKey } from '../../broker/registry/model.js';
import type { EnvelopeFormat } from '../format.js';
import { joseEnvelope } from './index.js';
import { DeliverySealer } from './seal-pool.js';
import { joseStoredSignatures } from './stored-signatures.js';

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const COMPACT_JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * JOSE: compact JWE (to the broker) ⊃ compact JWS ⊃ notice JSON in; JWK keys in
 * an agency's `keys`; deliveries are compact JWEs to the agency's current
 * encryption JWK, sealed on a worker thread (seal-pool.ts).
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
    defect: (body) => (COMPACT_JWE.test(Buffer.from(body).toString('latin1')) ? null : 'body is not a compact JWE'),
  },
} as const satisfies EnvelopeFormat<'jose'>;
