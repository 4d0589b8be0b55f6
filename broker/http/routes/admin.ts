import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Actor, KeyAdmin, RecordedEvent } from '../../admin/key-admin.js';
import type { NewAgencyKey } from '../../admin/agency-keys.js';
import { LiaisonError } from '../../core/errors.js';
import { SLUG, UUID } from '../../core/ids.js';
import { parseStrictJson } from '../../core/strict-json.js';
import { natsUnavailable } from '../../nats/errors.js';
import { MAX_ERASURE_REASON } from '../../admin/erasure-record.js';
import type { ReviewDue } from '../../erasure/retention.js';

/**
 * The key-lifecycle admin API (role operator). Each call is one registry event,
 * signed by the broker and logged: 201 with the event and its log index, or
 * 200 when the same `id` was already recorded (a retry).
 *
 *  POST /v1/admin/broker/keys/encryption/rotate
 *  POST /v1/admin/broker/keys/storage/rotate
 *  POST /v1/admin/broker/keys/signing/rotate
 *  POST /v1/admin/agencies/:agency/keys                 add a key
 *  POST /v1/admin/agencies/:agency/keys/:kid/rotate     add its successor; the old key ends after an overlap
 *  POST /v1/admin/agencies/:agency/keys/:kid/revoke
 *  PUT  /v1/admin/agencies/:agency                      create an agency, or set its record (keys apart)
 *  PUT  /v1/admin/operations/:operation                 create an operation, or set its record (members...)
 *  GET  /v1/admin/agencies/:agency, /v1/admin/operations/:operation   the record as stored, to edit and PUT back
 *  GET  /v1/admin/registry                              the whole registry in the seed's form
 *  POST /v1/admin/notices/:id/erase                     erase a notice (crypto-shredding; the log keeps its commitment)
 *  GET  /v1/admin/notices/review-due                    the notices whose review date has passed
 */
const MAX_BODY = 64 * 1024;
const uuid = {
  type: 'string',
  pattern: UUID.source,
  description: 'Idempotency key and event id: send the same id to retry.',
};
const reason = { type: 'string', maxLength: 500, description: 'Why (kept in the signed event: no secrets).' };
const timestamp = { type: 'string', format: 'date-time', maxLength: 40 };
const kid = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' };
const newKey = {
  type: 'object',
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['kid', 'use', 'jwk'],
      properties: {
        kid,
        use: { enum: ['sig', 'enc'] },
        jwk: {
          type: 'object',
          additionalProperties: false,
          required: ['kty', 'crv', 'x'],
          properties: {
            kty: { enum: ['OKP', 'EC'] },
            crv: { enum: ['Ed25519', 'X25519', 'P-256'] },
            x: { type: 'string', maxLength: 100 },
            y: { type: 'string', maxLength: 100 },
            kid,
            alg: { type: 'string', maxLength: 20 },
            use: { enum: ['sig', 'enc'] },
          },
        },
        not_before: timestamp,
        not_after: timestamp,
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['kid', 'use', 'format', 'armored'],
      properties: {
        kid,
        use: { enum: ['sig', 'enc'] },
        format: { const: 'openpgp' },
        armored: { type: 'string', maxLength: 32768 },
        not_before: timestamp,
        not_after: timestamp,
      },
    },
  ],
};
const recorded = {
  type: 'object',
  additionalProperties: false,
  required: ['event_id', 'type', 'log_index', 'event', 'duplicate'],
  properties: {
    event_id: { type: 'string' },
    type: { type: 'string' },
    log_index: { type: 'integer' },
    event: {
      type: 'string',
      description: 'The broker-signed registry event (compact JWS, typ liaison-registry-event+jws).',
    },
    duplicate: { type: 'boolean' },
  },
};
const agencyParams = {
  type: 'object',
  additionalProperties: false,
  required: ['agency'],
  properties: { agency: { type: 'string', pattern: SLUG.source } },
};
const keyParams = { ...agencyParams, required: ['agency', 'kid'], properties: { ...agencyParams.properties, kid } };
const operationParams = {
  type: 'object',
  additionalProperties: false,
  required: ['operation'],
  properties: { operation: { type: 'string', pattern: SLUG.source } },
};
// A record is checked by the broker against schemas/registry.schema.json (strict, no coercion), not by the route's schema.
const record = (what: string) => ({
  type: 'object',
  description: `The ${what} record (schemas/registry.schema.json); its id must be the path's.`,
});
const stored = { 200: { type: 'object', additionalProperties: true } };
/** What every registry-event route shares: one recorded event in answer. */
const common = { tags: ['admin'], security: [{ clientAssertion: [] }], response: { '2xx': recorded } };

/** POST /v1/admin/broker/keys/encryption/rotate */
export const rotateBrokerEncryptionKeysSchema = {
  ...common,
  summary: "Rotate the broker's encryption keys",
  description:
    'New P-256 and X25519 keys are published; the previous ones stop being published and keep decrypting for grace_seconds (default: the configured grace). Role operator.',
  body: {
    type: 'object',
    additionalProperties: false,
    properties: { id: uuid, grace_seconds: { type: 'integer', minimum: 0, maximum: 31536000 }, reason },
  },
} as const;

/** POST /v1/admin/broker/keys/storage/rotate */
export const rotateBrokerStorageKeySchema = {
  ...common,
  summary: "Rotate the broker's storage key",
  description:
    "A new storage key wraps new notices' data keys (notices sealed at rest); every stored notice key is re-wrapped under it, and a superseded storage key is dropped from the keyring once nothing needs it. The key never leaves the sealed keyring: the event names kids only. Role operator.",
  body: { type: 'object', additionalProperties: false, properties: { id: uuid, reason } },
} as const;

/** POST /v1/admin/broker/keys/signing/rotate */
export const rotateBrokerSigningKeySchema = {
  ...common,
  summary: "Rotate the broker's signing key",
  description:
    'A new Ed25519 key signs receipts, checkpoints and webhooks from now on; the old one stays published (GET /v1/keys, /v1/keys/history) so what it signed stays verifiable. The event is signed by the outgoing key. Role operator.',
  body: { type: 'object', additionalProperties: false, properties: { id: uuid, reason } },
} as const;

/** POST /v1/admin/agencies/:agency/keys */
export const addAgencyKeySchema = {
  ...common,
  summary: 'Add an agency key',
  description: 'Register a new public key (JWK or OpenPGP certificate) for an agency. Role operator.',
  params: agencyParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['key'],
    properties: { id: uuid, key: newKey, reason },
  },
} as const;

/** POST /v1/admin/agencies/:agency/keys/:kid/rotate */
export const rotateAgencyKeySchema = {
  ...common,
  summary: 'Rotate an agency key',
  description:
    'Register the successor of a key; the old key stays valid for overlap_seconds (default: the configured overlap), then ends (not_after). What it signed stays verifiable. Role operator.',
  params: keyParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['key'],
    properties: { id: uuid, key: newKey, overlap_seconds: { type: 'integer', minimum: 0, maximum: 31536000 }, reason },
  },
} as const;

/** POST /v1/admin/agencies/:agency/keys/:kid/revoke */
export const revokeAgencyKeySchema = {
  ...common,
  summary: 'Revoke an agency key',
  description:
    'The key stops working on every gateway at once (or at revoked_at, which may not be in the past). Notices it signed before stay verifiable. Role operator.',
  params: keyParams,
  body: { type: 'object', additionalProperties: false, properties: { id: uuid, revoked_at: timestamp, reason } },
} as const;

/** PUT /v1/admin/agencies/:agency */
export const putAgencySchema = {
  ...common,
  summary: 'Create an agency, or set its record',
  description:
    "Create a member agency (its record and first public keys in `keys`), or replace an existing agency's record as a whole (name, roles, webhook, delivery_format, certificates): its keys stay as they are and change only through the key routes; `keys` may list those it has. The country of an existing agency does not change. Role operator.",
  params: agencyParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['agency'],
    properties: {
      id: uuid,
      agency: record('agency, without keys'),
      keys: { type: 'array', maxItems: 20, items: newKey },
      reason,
    },
  },
} as const;

/** PUT /v1/admin/operations/:operation */
export const putOperationSchema = {
  ...common,
  summary: 'Create an operation, or set its record',
  description:
    'Create an operation, or replace its record as a whole: name, status, members (every one a registered agency; one left out leaves the operation), categories, start and end. Role operator.',
  params: operationParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['operation'],
    properties: { id: uuid, operation: record('operation'), reason },
  },
} as const;

/** POST /v1/admin/notices/:id/erase */
export const eraseNoticeSchema = {
  ...common,
  summary: 'Erase a notice',
  description:
    "A broker-signed `notice-erased` event is logged, then the notice's key is destroyed (crypto-shredding) and its content purged: the stored notice, every recipient's pending delivery, its webhook dead letters. Each agency that got the notice finds a broker-signed erasure record in its inbox. The log entry, every proof and the origin's receipt still verify; the notice id stays taken. One event per notice: asking again completes a half-done erasure and answers the same event (200). Role operator.",
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['id'],
    properties: { id: { type: 'string', pattern: UUID.source, description: 'The notice id.' } },
  },
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['reason'],
    properties: {
      reason: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_ERASURE_REASON,
        description:
          "Why (kept byte for byte in the signed event, any script; never in a log line nor in the recipients' erasure record).",
      },
    },
  },
} as const;

/** GET /v1/admin/notices/review-due */
export const getReviewDueSchema = {
  tags: ['admin'],
  security: [{ clientAssertion: [] }],
  summary: 'Notices due for review',
  description:
    "The notices (not erased) whose review date has passed: received_at plus their operation's review_days, else the network default (config reviewDays); oldest first, at most `limit` (default 100). Role operator.",
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' } },
  },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['notices'],
      properties: {
        notices: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['notice_id', 'operation', 'origin', 'type', 'log_index', 'received_at', 'review_at'],
            properties: {
              notice_id: { type: 'string' },
              operation: { type: 'string' },
              origin: {
                type: 'object',
                additionalProperties: false,
                required: ['country', 'agency'],
                properties: { country: { type: 'string' }, agency: { type: 'string' } },
              },
              type: { type: 'string' },
              log_index: { type: 'integer' },
              received_at: { type: 'string' },
              review_at: { type: 'string' },
            },
          },
        },
      },
    },
  },
} as const;

/** GET /v1/admin/registry */
export const getRegistrySchema = {
  tags: ['admin'],
  security: [{ clientAssertion: [] }],
  summary: 'The whole member registry',
  description:
    'Every agency and operation as this gateway enforces them, in the form of a registry seed (schemas/registry.schema.json): a record of the network, and the input of `liaison nats creds` and `liaison nats consumers`. Role operator.',
  response: stored,
} as const;

/** GET /v1/admin/agencies/:agency */
export const getAgencySchema = {
  tags: ['admin'],
  security: [{ clientAssertion: [] }],
  summary: "An agency's record as stored",
  description: 'The record to edit and PUT back (its keys are left as they are). Role operator.',
  params: agencyParams,
  response: stored,
} as const;

/** GET /v1/admin/operations/:operation */
export const getOperationSchema = {
  tags: ['admin'],
  security: [{ clientAssertion: [] }],
  summary: "An operation's record as stored",
  description: 'The record to edit and PUT back. Role operator.',
  params: operationParams,
  response: stored,
} as const;

export const adminRoutes: FastifyPluginAsync<{
  admin: KeyAdmin;
  reviewDue?: (limit: number) => Promise<ReviewDue[]>;
}> = async (app, { admin, reviewDue }) => {
  // Admin bodies are hostile input like any other: strict JSON (no duplicate keys, no __proto__, bounded).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_BODY }, (_req, body, done) => {
    try {
      done(null, parseStrictJson(body, { maxBytes: MAX_BODY, maxDepth: 6 }));
    } catch (e) {
      const why = e instanceof LiaisonError && e.publicDetail ? `: ${e.publicDetail}` : '';
      done(new LiaisonError('bad-request', { publicDetail: `the body is not acceptable JSON${why}` }), undefined);
    }
  });

  const operator = app.requireRole('operator');
  const actor = (r: FastifyRequest): Actor => {
    if (!r.agency) throw new LiaisonError('unauthorized');
    return { agency: r.agency.agencyId, kid: r.agency.kid };
  };
  const done = (reply: { code(n: number): unknown }, r: RecordedEvent) => {
    reply.code(r.duplicate ? 200 : 201);
    return r;
  };

  app.post<{ Body: { id?: string; grace_seconds?: number; reason?: string } }>(
    '/v1/admin/broker/keys/encryption/rotate',
    { preHandler: operator, schema: rotateBrokerEncryptionKeysSchema },
    async (request, reply) => done(reply, await admin.rotateBrokerEncryptionKeys(actor(request), request.body ?? {})),
  );
  app.post<{ Body: { id?: string; reason?: string } }>(
    '/v1/admin/broker/keys/storage/rotate',
    { preHandler: operator, schema: rotateBrokerStorageKeySchema },
    async (request, reply) => done(reply, await admin.rotateBrokerStorageKey(actor(request), request.body ?? {})),
  );
  app.post<{ Body: { id?: string; reason?: string } }>(
    '/v1/admin/broker/keys/signing/rotate',
    { preHandler: operator, schema: rotateBrokerSigningKeySchema },
    async (request, reply) => done(reply, await admin.rotateBrokerSigningKey(actor(request), request.body ?? {})),
  );
  app.post<{ Params: { agency: string }; Body: { id?: string; key: NewAgencyKey; reason?: string } }>(
    '/v1/admin/agencies/:agency/keys',
    { preHandler: operator, schema: addAgencyKeySchema },
    async (request, reply) =>
      done(reply, await admin.addAgencyKey(actor(request), request.params.agency, request.body)),
  );
  app.post<{
    Params: { agency: string; kid: string };
    Body: { id?: string; key: NewAgencyKey; overlap_seconds?: number; reason?: string };
  }>(
    '/v1/admin/agencies/:agency/keys/:kid/rotate',
    { preHandler: operator, schema: rotateAgencyKeySchema },
    async (request, reply) =>
      done(reply, await admin.rotateAgencyKey(actor(request), request.params.agency, request.params.kid, request.body)),
  );
  app.post<{ Params: { agency: string; kid: string }; Body: { id?: string; revoked_at?: string; reason?: string } }>(
    '/v1/admin/agencies/:agency/keys/:kid/revoke',
    { preHandler: operator, schema: revokeAgencyKeySchema },
    async (request, reply) =>
      done(
        reply,
        await admin.revokeAgencyKey(actor(request), request.params.agency, request.params.kid, request.body ?? {}),
      ),
  );
  app.put<{
    Params: { agency: string };
    Body: { id?: string; agency: unknown; keys?: NewAgencyKey[]; reason?: string };
  }>('/v1/admin/agencies/:agency', { preHandler: operator, schema: putAgencySchema }, async (request, reply) =>
    done(reply, await admin.setAgency(actor(request), request.params.agency, request.body)),
  );
  app.put<{ Params: { operation: string }; Body: { id?: string; operation: unknown; reason?: string } }>(
    '/v1/admin/operations/:operation',
    { preHandler: operator, schema: putOperationSchema },
    async (request, reply) =>
      done(reply, await admin.setOperation(actor(request), request.params.operation, request.body)),
  );
  app.post<{ Params: { id: string }; Body: { reason: string } }>(
    '/v1/admin/notices/:id/erase',
    { preHandler: operator, schema: eraseNoticeSchema },
    async (request, reply) => {
      request.trace.notice_id = request.params.id;
      return done(reply, await admin.eraseNotice(actor(request), request.params.id, request.body));
    },
  );
  if (reviewDue)
    app.get<{ Querystring: { limit?: string } }>(
      '/v1/admin/notices/review-due',
      { preHandler: operator, schema: getReviewDueSchema },
      async (request, reply) => {
        reply.header('cache-control', 'no-store');
        return { notices: await reviewDue(Number(request.query.limit ?? 100)) };
      },
    );
  const read = async <T>(get: () => Promise<T | undefined>, what: string): Promise<T> => {
    const r = await get().catch((e: unknown) => {
      throw natsUnavailable(e, 'registry read');
    });
    if (r === undefined) throw new LiaisonError('not-found', { publicDetail: `no ${what}` });
    return r;
  };
  app.get('/v1/admin/registry', { preHandler: operator, schema: getRegistrySchema }, async () => admin.registry());
  app.get<{ Params: { agency: string } }>(
    '/v1/admin/agencies/:agency',
    { preHandler: operator, schema: getAgencySchema },
    async (request) => read(() => admin.readAgency(request.params.agency), `agency ${request.params.agency}`),
  );
  app.get<{ Params: { operation: string } }>(
    '/v1/admin/operations/:operation',
    { preHandler: operator, schema: getOperationSchema },
    async (request) =>
      read(() => admin.readOperation(request.params.operation), `operation ${request.params.operation}`),
  );
};
