import type { FastifyPluginAsync } from 'fastify';
import { listComplaints, recordComplaint } from '../../acks/complaint.js';
import { listAcks, recordAck, type AckDeps } from '../../acks/record.js';
import { COMPLAINT_REASONS } from '../../core/complaint.js';
import { LiaisonError } from '../../core/errors.js';

export type AckRouteOptions = AckDeps;

/** One read receipt as GET /v1/notices/:id/acks lists it. */
const ackItem = {
  type: 'object',
  additionalProperties: false,
  required: ['agency', 'signer_kid', 'acked_at', 'received_at', 'ack', 'sha256'],
  properties: {
    agency: { type: 'string' },
    signer_kid: { type: 'string' },
    acked_at: { type: 'string' },
    received_at: { type: 'string' },
    ack: { type: 'string' },
    sha256: { type: 'string' },
  },
} as const;

/** POST /v1/inbox/ack */
export const postInboxAckSchema = {
  summary: 'Acknowledge a delivery (signed read receipt)',
  description:
    "Record the recipient's signed read receipt of a notice in the log: 201 when recorded, 200 when it was already recorded. Role subscribe.",
  tags: ['inbox'],
  security: [{ clientAssertion: [] }],
  body: {
    description: "The recipient's read receipt.",
    content: {
      'application/jose': {
        schema: { type: 'string', description: 'Compact JWS by the recipient agency signing key.' },
      },
    },
  },
  response: {
    '2xx': {
      type: 'object',
      additionalProperties: false,
      required: ['notice_id', 'agency', 'log_index', 'received_at', 'duplicate'],
      properties: {
        notice_id: { type: 'string' },
        agency: { type: 'string' },
        log_index: { type: 'integer' },
        received_at: { type: 'string' },
        duplicate: { type: 'boolean' },
      },
    },
  },
} as const;

/** GET /v1/notices/:id/acks */
export const getNoticeAcksSchema = {
  summary: 'Read receipts of one of my notices',
  description: 'The signed read receipts recorded for a notice the authenticated agency sent. Role publish.',
  tags: ['notices'],
  security: [{ clientAssertion: [] }],
  params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 36 } } },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['notice_id', 'acks'],
      properties: { notice_id: { type: 'string' }, acks: { type: 'array', items: ackItem } },
    },
  },
} as const;

/** One complaint as GET /v1/notices/:id/complaints lists it. */
const complaintItem = {
  type: 'object',
  additionalProperties: false,
  required: ['agency', 'signer_kid', 'reason', 'complained_at', 'received_at', 'complaint', 'sha256'],
  properties: {
    agency: { type: 'string' },
    signer_kid: { type: 'string' },
    reason: { type: 'string', enum: [...COMPLAINT_REASONS] },
    complained_at: { type: 'string' },
    received_at: { type: 'string' },
    complaint: { type: 'string', description: "The recipient's compact JWS, exactly as received." },
    sha256: { type: 'string' },
  },
} as const;

/** POST /v1/inbox/complaint */
export const postInboxComplaintSchema = {
  summary: 'Complain about a notice received (signed, logged)',
  description:
    "Record the recipient's signed complaint about a notice delivered to it (schemas/complaint.schema.json) in the log: 201 when recorded, 200 when this same complaint was already recorded; a different complaint by the same agency about the same notice is 409 complaint-conflict. Role subscribe.",
  tags: ['inbox'],
  security: [{ clientAssertion: [] }],
  body: {
    description: "The recipient's complaint.",
    content: {
      'application/jose': {
        schema: {
          type: 'string',
          description: 'Compact JWS (typ liaison-complaint+jws) by the recipient agency signing key.',
        },
      },
    },
  },
  response: {
    '2xx': {
      type: 'object',
      additionalProperties: false,
      required: ['notice_id', 'agency', 'reason', 'log_index', 'received_at', 'duplicate'],
      properties: {
        notice_id: { type: 'string' },
        agency: { type: 'string' },
        reason: { type: 'string' },
        log_index: { type: 'integer' },
        received_at: { type: 'string' },
        duplicate: { type: 'boolean' },
      },
    },
  },
} as const;

/** GET /v1/notices/:id/complaints */
export const getNoticeComplaintsSchema = {
  summary: 'Complaints about one of my notices',
  description: "The recipients' signed complaints recorded about a notice the authenticated agency sent. Role publish.",
  tags: ['notices'],
  security: [{ clientAssertion: [] }],
  params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 36 } } },
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['notice_id', 'complaints'],
      properties: { notice_id: { type: 'string' }, complaints: { type: 'array', items: complaintItem } },
    },
  },
} as const;

/**
 * Read receipts and complaints: statements a recipient signs about a notice.
 *  POST /v1/inbox/ack                (subscribe) body: the recipient's compact JWS (application/jose)
 *  GET  /v1/notices/:id/acks         (publish)   the receipts of one's own notice
 *  POST /v1/inbox/complaint          (subscribe) body: the recipient's compact JWS (application/jose)
 *  GET  /v1/notices/:id/complaints   (publish)   the complaints about one's own notice
 */
export const ackRoutes: FastifyPluginAsync<AckRouteOptions> = async (app, opts) => {
  // The largest statement is a complaint (COMPLAINT_KIND.maxBytes); each kind checks its own limit.
  app.addContentTypeParser('application/jose', { parseAs: 'string', bodyLimit: 16_384 }, (_req, body, done) =>
    done(null, body),
  );
  const statementBody = (body: unknown, what: string): string => {
    if (typeof body !== 'string')
      throw new LiaisonError('unsupported-media-type', {
        publicDetail: `send the ${what} as application/jose (a compact JWS)`,
      });
    return body.trim();
  };

  app.post(
    '/v1/inbox/ack',
    { preHandler: app.requireRole('subscribe'), schema: postInboxAckSchema },
    async (request, reply) => {
      const agency = request.agency?.agencyId;
      if (!agency) throw new LiaisonError('unauthorized');
      const recorded = await recordAck(opts, agency, statementBody(request.body, 'read receipt'));
      request.trace.notice_id = recorded.notice_id;
      reply.code(recorded.duplicate ? 200 : 201);
      return recorded;
    },
  );

  app.get(
    '/v1/notices/:id/acks',
    { preHandler: app.requireRole('publish'), schema: getNoticeAcksSchema },
    async (request, reply) => {
      const id = (request.params as { id: string }).id;
      request.trace.notice_id = id;
      const acks = await listAcks(opts.bus, id, request.agency?.agencyId ?? '');
      reply.header('cache-control', 'no-store');
      return { notice_id: id, acks };
    },
  );

  app.post(
    '/v1/inbox/complaint',
    { preHandler: app.requireRole('subscribe'), schema: postInboxComplaintSchema },
    async (request, reply) => {
      const agency = request.agency?.agencyId;
      if (!agency) throw new LiaisonError('unauthorized');
      const recorded = await recordComplaint(opts, agency, statementBody(request.body, 'complaint'));
      request.trace.notice_id = recorded.notice_id;
      reply.code(recorded.duplicate ? 200 : 201);
      return recorded;
    },
  );

  app.get(
    '/v1/notices/:id/complaints',
    { preHandler: app.requireRole('publish'), schema: getNoticeComplaintsSchema },
    async (request, reply) => {
      const id = (request.params as { id: string }).id;
      request.trace.notice_id = id;
      const complaints = await listComplaints(opts.bus, id, request.agency?.agencyId ?? '');
      reply.header('cache-control', 'no-store');
      return { notice_id: id, complaints };
    },
  );
};
