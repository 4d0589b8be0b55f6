import type { FastifyPluginAsync } from 'fastify';
import type { BrokerKeyring } from '../../keys/broker-keys.js';

const jwkSchema = {
  type: 'object',
  properties: { kty: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' }, y: { type: 'string' }, kid: { type: 'string' }, use: { type: 'string' }, alg: { type: 'string' } },
  required: ['kty', 'kid'],
};

export const keysRoutes: FastifyPluginAsync<{ keyring: BrokerKeyring }> = async (app, { keyring }) => {
  /** The broker's public JWKS (signing key history and encryption keys) plus its id, the audience of client assertions. */
  app.get(
    '/v1/keys',
    { schema: { response: { 200: { type: 'object', properties: { broker: { type: 'string' }, keys: { type: 'array', items: jwkSchema } }, required: ['broker', 'keys'] } } } },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60');
      return keyring.jwks();
    },
  );
};
