import type { FastifyPluginAsync } from 'fastify';
import { LiaisonError } from '../../core/errors.js';
import { isSlug } from '../../core/ids.js';
import type { RegistrySnapshot } from '../../registry/model.js';

/**
 * The public keys of one member agency, with their history (status, validity,
 * revocation), so that a recipient can verify an origin's signature inside a
 * delivery itself, including notices signed with a key rotated out since.
 * Authenticated: the member directory is for members.
 */
export const agencyKeysRoutes: FastifyPluginAsync<{ registry: () => RegistrySnapshot }> = async (app, opts) => {
  const keySchema = {
    type: 'object',
    additionalProperties: false,
    required: ['kid', 'use', 'status', 'jwk'],
    properties: {
      kid: { type: 'string' },
      use: { type: 'string' },
      status: { type: 'string' },
      not_before: { type: 'string' },
      not_after: { type: 'string' },
      revoked_at: { type: 'string' },
      // Public members only: a private member in the registry could never leak through here.
      jwk: { type: 'object', additionalProperties: false, properties: { kty: { type: 'string' }, crv: { type: 'string' }, x: { type: 'string' }, y: { type: 'string' }, kid: { type: 'string' }, alg: { type: 'string' }, use: { type: 'string' } } },
    },
  };
  const openPgpKeySchema = {
    type: 'object',
    additionalProperties: false,
    required: ['kid', 'use', 'format', 'status', 'armored'],
    properties: {
      kid: { type: 'string' },
      use: { type: 'string' },
      format: { type: 'string' },
      status: { type: 'string' },
      not_before: { type: 'string' },
      not_after: { type: 'string' },
      revoked_at: { type: 'string' },
      armored: { type: 'string' },
    },
  };
  app.get(
    '/v1/registry/agencies/:id/keys',
    {
      preHandler: app.requireRole('subscribe'),
      schema: {
        summary: "A member agency's public keys",
        description: 'Signing and encryption keys of one member agency with their history (status, validity window, revocation), to verify origin signatures inside deliveries: JWKs in `keys`, OpenPGP certificates (armored public key blocks) in `openpgp_keys`. Role subscribe.',
        tags: ['keys'],
        security: [{ clientAssertion: [] }],
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
        response: { 200: { type: 'object', additionalProperties: false, required: ['agency', 'country', 'keys'], properties: { agency: { type: 'string' }, country: { type: 'string' }, keys: { type: 'array', items: keySchema }, openpgp_keys: { type: 'array', items: openPgpKeySchema } } } },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!isSlug(id)) throw new LiaisonError('bad-request', { publicDetail: 'the agency id must be a lower-case slug' });
      const agency = opts.registry().agency(id);
      if (!agency) throw new LiaisonError('not-found', { publicDetail: 'no such agency' });
      reply.header('cache-control', 'private, max-age=60');
      // OpenPGP certificates (public key blocks only), to verify OpenPGP-origin notices inside deliveries.
      const openpgp_keys = (agency.openpgp_keys ?? []).filter((k) => !/PRIVATE KEY/.test(k.armored));
      return { agency: agency.id, country: agency.country, keys: agency.keys, openpgp_keys };
    },
  );
};
