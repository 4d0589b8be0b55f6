import type { FastifyPluginAsync } from 'fastify';
import type { BrokerKeyring } from '../../keys/broker-keys.js';

const jwkSchema = {
  type: 'object',
  properties: {
    kty: { type: 'string' },
    crv: { type: 'string' },
    x: { type: 'string' },
    y: { type: 'string' },
    kid: { type: 'string' },
    use: { type: 'string' },
    alg: { type: 'string' },
  },
  required: ['kty', 'kid'],
};

/** One broker key with its times (which ones: per key use). */
const historyItem = (times: string[]) => ({
  type: 'object',
  additionalProperties: false,
  required: ['kid', 'jwk', 'current'],
  properties: {
    kid: { type: 'string' },
    jwk: jwkSchema,
    current: { type: 'boolean' },
    ...Object.fromEntries(times.map((t) => [t, { type: 'string' }])),
  },
});

/** GET /v1/keys */
export const getKeysSchema = {
  summary: "The broker's public keys",
  description:
    'JWKS of the broker signing keys (receipts, checkpoints; history kept for verification) and encryption keys (seal notices to one of these), plus `broker`, the audience of client assertions.',
  tags: ['keys'],
  security: [],
  response: {
    200: {
      type: 'object',
      properties: {
        broker: { type: 'string' },
        keys: { type: 'array', items: jwkSchema },
        openpgp: {
          type: 'string',
          description: "The broker's ASCII-armored OpenPGP public key (v4, Ed25519 + cv25519).",
        },
      },
      required: ['broker', 'keys'],
    },
  },
} as const;

/** GET /v1/keys/history */
export const getKeyHistorySchema = {
  summary: "The broker's key history",
  description:
    'Every broker signing key (created_at, retired_at; the current one first) and every encryption key still held (created_at; decrypt_until once rotated out). Public parts only. Each change is also a signed registry event in the log.',
  tags: ['keys'],
  security: [],
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['broker', 'signing', 'encryption'],
      properties: {
        broker: { type: 'string' },
        signing: { type: 'array', items: historyItem(['created_at', 'retired_at']) },
        encryption: { type: 'array', items: historyItem(['created_at', 'decrypt_until']) },
      },
    },
  },
} as const;

export const keysRoutes: FastifyPluginAsync<{ keyring: BrokerKeyring }> = async (app, { keyring }) => {
  /** The broker's public JWKS (signing key history and encryption keys) plus its id, the audience of client assertions. */
  app.get('/v1/keys', { schema: getKeysSchema }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=60');
    return keyring.jwks();
  });

  /** Every broker key with its times: which signing key was current when, and until when a rotated-out encryption key decrypts. */
  app.get('/v1/keys/history', { schema: getKeyHistorySchema }, async (_request, reply) => {
    reply.header('cache-control', 'no-cache');
    return keyring.history();
  });
};
