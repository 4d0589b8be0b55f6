import type { FastifyPluginAsync, preHandlerAsyncHookHandler } from 'fastify';
import { isLiaisonError, LiaisonError } from '../../core/errors.js';
import { isSlug } from '../../core/ids.js';
import type { Agency, RegistrySnapshot } from '../../registry/model.js';

/** Public wording for "no such agency" and "no operation in common": the same, on purpose. */
export const NOT_SHARED = 'no agency with this id shares an operation with yours';

/**
 * Whose keys `caller` may read: its own, those of every agency listed with it
 * in an operation (running or not: notices of an ended operation are still
 * verified), and any agency's for an operator.
 */
export function mayReadKeys(registry: RegistrySnapshot, caller: Agency, target: string): boolean {
  if (caller.id === target || caller.roles.includes('operator')) return true;
  return registry.operations().some((op) => op.members.includes(caller.id) && op.members.includes(target));
}

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
    jwk: {
      type: 'object',
      additionalProperties: false,
      properties: {
        kty: { type: 'string' },
        crv: { type: 'string' },
        x: { type: 'string' },
        y: { type: 'string' },
        kid: { type: 'string' },
        alg: { type: 'string' },
        use: { type: 'string' },
      },
    },
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

/** GET /v1/registry/agencies/:id/keys */
export const getAgencyKeysSchema = {
  summary: "A member agency's public keys",
  description:
    'Signing and encryption keys of one member agency with their history (status, validity window, revocation), to verify origin signatures inside deliveries: JWKs in `keys`, OpenPGP certificates (armored public key blocks) in `openpgp_keys`. Only for an agency that shares an operation with the caller (or the caller itself); any other id, known or not, is the same 404. Role subscribe, or operator (any agency).',
  tags: ['keys'],
  security: [{ clientAssertion: [] }],
  params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['agency', 'country', 'keys'],
      properties: {
        agency: { type: 'string' },
        country: { type: 'string' },
        keys: { type: 'array', items: keySchema },
        openpgp_keys: { type: 'array', items: openPgpKeySchema },
      },
    },
  },
} as const;

/**
 * The public keys of one member agency, with their history (status, validity,
 * revocation), so that a recipient can verify an origin's signature inside a
 * delivery itself, including notices signed with a key rotated out since.
 * Authenticated, and only for agencies that share an operation with the
 * caller: the member directory is not a list of the network for any member.
 */
export const agencyKeysRoutes: FastifyPluginAsync<{ registry: () => RegistrySnapshot }> = async (app, opts) => {
  // Subscribers verify origins; operators (who manage every agency's keys) may read any agency's too.
  const subscriber = app.requireRole('subscribe');
  const subscriberOrOperator: preHandlerAsyncHookHandler = async function (request, reply) {
    try {
      await subscriber.call(this, request, reply);
    } catch (e) {
      if (!(isLiaisonError(e) && e.code === 'forbidden' && request.agency?.roles.includes('operator'))) throw e;
    }
  };
  app.get(
    '/v1/registry/agencies/:id/keys',
    { preHandler: subscriberOrOperator, schema: getAgencyKeysSchema },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!isSlug(id))
        throw new LiaisonError('bad-request', { publicDetail: 'the agency id must be a lower-case slug' });
      const registry = opts.registry();
      const caller = request.agency ? registry.agency(request.agency.agencyId) : undefined;
      const agency = registry.agency(id);
      // Unknown and not shared read the same: a member cannot list the network by asking.
      if (!caller || !agency || !mayReadKeys(registry, caller, agency.id)) {
        throw new LiaisonError('not-found', {
          detail: `keys of ${id}: ${agency ? 'no operation in common with the caller' : 'no such agency'}`,
          publicDetail: NOT_SHARED,
        });
      }
      reply.header('cache-control', 'private, max-age=60');
      // OpenPGP certificates (public key blocks only), to verify OpenPGP-origin notices inside deliveries.
      const openpgp_keys = (agency.openpgp_keys ?? []).filter((k) => !/PRIVATE KEY/.test(k.armored));
      return { agency: agency.id, country: agency.country, keys: agency.keys, openpgp_keys };
    },
  );
};
