import type { FastifyPluginAsync } from 'fastify';
import { isLiaisonError, LiaisonError } from '../../core/errors.js';
import { isSlug } from '../../core/ids.js';
import { deliveryKeyAt } from '../../formats/registry.js';
import { encryptionKeysAt, keyStateAt, type RegistrySnapshot } from '../../registry/model.js';

/** Public wording for "no such operation" and "not a member": the same, on purpose. */
export const NOT_A_MEMBER_OF = 'no operation with this id counts the calling agency as a member';

const publicJwk = {
  type: 'object',
  additionalProperties: false,
  required: ['kty', 'crv', 'x', 'kid'],
  properties: {
    kty: { type: 'string' },
    crv: { type: 'string' },
    x: { type: 'string' },
    y: { type: 'string' },
    kid: { type: 'string' },
    alg: { type: 'string' },
    use: { type: 'string' },
  },
} as const;

/** GET /v1/operations/:id/members */
export const getOperationMembersSchema = {
  summary: "An operation's member directory",
  description:
    'The members of one operation, each with its country, the public encryption keys (JWKs) valid now and its active OpenPGP certificates: what a sender needs to seal an end-to-end notice for its recipients (docs/end-to-end.md). Only for members of the operation; any other id, known or not, is the same 404 `operation-not-found`. Any role.',
  tags: ['keys'],
  security: [{ clientAssertion: [] }],
  params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['operation', 'end_to_end', 'members'],
      properties: {
        operation: { type: 'string' },
        end_to_end: { type: 'boolean' },
        members: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['agency', 'country', 'receives', 'encryption_keys', 'openpgp_keys'],
            properties: {
              agency: { type: 'string' },
              country: { type: 'string' },
              receives: {
                type: 'boolean',
                description:
                  'Whether notices are delivered to it (the subscribe role and a current key of its delivery format, as the gateway counts recipients): an end-to-end notice is sealed for exactly the receiving members its addressees name.',
              },
              encryption_keys: { type: 'array', items: publicJwk },
              openpgp_keys: {
                type: 'array',
                description:
                  'Its active OpenPGP certificates (ASCII-armored public key blocks), for the OpenPGP form (openpgp-e2e): a sender seals for a valid encryption (sub)key of one of them.',
                items: { type: 'string' },
              },
            },
          },
        },
      },
    },
  },
} as const;

export interface OperationMembers {
  operation: string;
  end_to_end: boolean;
  members: {
    agency: string;
    country: string;
    receives: boolean;
    encryption_keys: Record<string, string>[];
    openpgp_keys: string[];
  }[];
}

/** The directory of `operation` as `caller` may see it at `at`; undefined when the caller is not a member (or there is no such operation). */
export function operationMembers(
  registry: RegistrySnapshot,
  caller: string,
  operation: string,
  at: Date,
): OperationMembers | undefined {
  const op = registry.operation(operation);
  if (!op || !op.members.includes(caller)) return undefined;
  const members = op.members.flatMap((id) => {
    const agency = registry.agency(id);
    if (!agency) return [];
    const encryption_keys = encryptionKeysAt(agency.keys, at).map((k) => {
      const j = k.jwk as unknown as Record<string, unknown>;
      // Public members only, and the record's kid: a private member could never leave through here.
      const pub = Object.fromEntries(
        ['kty', 'crv', 'x', 'y', 'alg'].filter((f) => typeof j[f] === 'string').map((f) => [f, j[f] as string]),
      );
      return { ...pub, kid: k.kid, use: 'enc' };
    });
    // Public key blocks only: a record holding a secret key block is never listed.
    const openpgp_keys = (agency.openpgp_keys ?? [])
      .filter(
        (k) =>
          keyStateAt(k, at) === 'active' && k.armored.trimStart().startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----'),
      )
      .map((k) => k.armored);
    // The gateway's own test of a receiving member (broker/ingest/policy.ts).
    const receives = agency.roles.includes('subscribe') && deliveryKeyAt(agency, at) !== undefined;
    return [{ agency: agency.id, country: agency.country, receives, encryption_keys, openpgp_keys }];
  });
  return { operation: op.id, end_to_end: op.end_to_end === true, members };
}

/**
 * The member directory of an operation, for its members only: senders of
 * end-to-end notices read their recipients' keys here. Any authenticated
 * agency may ask; a non-member learns nothing, not even that the operation
 * exists.
 */
export const operationMembersRoutes: FastifyPluginAsync<{ registry: () => RegistrySnapshot }> = async (app, opts) => {
  // Any role: membership is the gate, checked in the handler.
  const authenticated = app.requireRole('publish');
  app.get(
    '/v1/operations/:id/members',
    {
      preHandler: async function (request, reply) {
        try {
          await authenticated.call(this, request, reply);
        } catch (e) {
          if (!(isLiaisonError(e) && e.code === 'forbidden' && request.agency)) throw e;
        }
      },
      schema: getOperationMembersSchema,
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      if (!isSlug(id))
        throw new LiaisonError('bad-request', { publicDetail: 'the operation id must be a lower-case slug' });
      const found = request.agency
        ? operationMembers(opts.registry(), request.agency.agencyId, id, new Date())
        : undefined;
      if (!found) {
        throw new LiaisonError('operation-not-found', {
          detail: `members of ${id}: no such operation, or the caller is not a member`,
          publicDetail: NOT_A_MEMBER_OF,
        });
      }
      reply.header('cache-control', 'private, max-age=60');
      return found;
    },
  );
};
