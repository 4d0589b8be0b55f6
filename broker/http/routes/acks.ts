import type { FastifyPluginAsync, FastifyInstance } from 'fastify';
import { listComplaints, recordComplaint } from '../../acks/complaint.js';
import { listAcks, recordAck, type AckDeps } from '../../acks/record.js';
import { ACK_TYP } from '../../acks/read-receipt.js';
import { COMPLAINT_REASONS, COMPLAINT_TYP } from '../../core/complaint.js';
import { LiaisonError } from '../../core/errors.js';

export type AckRouteOptions = AckDeps;

/** The schema of a POST of a recipient's statement (a compact JWS) and of its answer. */
function postStatementSchema(o: {
  summary: string;
  description: string;
  what: string;
  typ: string;
  answer: Record<string, { type: string }>;
}) {
  return {
    summary: o.summary,
    description: `${o.description} Role subscribe.`,
    tags: ['inbox'],
    security: [{ clientAssertion: [] }],
    body: {
      description: `The recipient's ${o.what}.`,
      content: {
        'application/jose': {
          schema: { type: 'string', description: `Compact JWS (typ ${o.typ}) by the recipient agency signing key.` },
        },
      },
    },
    response: {
      '2xx': {
        type: 'object',
        additionalProperties: false,
        required: ['notice_id', 'agency', ...Object.keys(o.answer), 'log_index', 'received_at', 'duplicate'],
        properties: {
          notice_id: { type: 'string' },
          agency: { type: 'string' },
          ...o.answer,
          log_index: { type: 'integer' },
          received_at: { type: 'string' },
          duplicate: { type: 'boolean' },
        },
      },
    },
  } as const;
}

/** The schema of GET /v1/notices/:id/<list>: the statements about one of the caller's notices. */
function listStatementsSchema(o: { summary: string; description: string; list: string; item: object; roles?: string }) {
  return {
    summary: o.summary,
    description: `${o.description} Role ${o.roles ?? 'publish'}.`,
    tags: ['notices'],
    security: [{ clientAssertion: [] }],
    params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 36 } } },
    response: {
      200: {
        type: 'object',
        additionalProperties: false,
        required: ['notice_id', o.list],
        properties: { notice_id: { type: 'string' }, [o.list]: { type: 'array', items: o.item } },
      },
    },
  } as const;
}

/** One listed statement: who signed it with which key, when, and the JWS as received with its committed hash. */
const statementItem = (jws: string, signedAt: string, more: Record<string, object> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['agency', 'signer_kid', ...Object.keys(more), signedAt, 'received_at', jws, 'sha256'],
  properties: {
    agency: { type: 'string' },
    signer_kid: { type: 'string' },
    ...more,
    [signedAt]: { type: 'string' },
    received_at: { type: 'string' },
    [jws]: { type: 'string', description: "The recipient's compact JWS, exactly as received." },
    sha256: { type: 'string' },
  },
});

/** POST /v1/inbox/ack */
export const postInboxAckSchema = postStatementSchema({
  summary: 'Acknowledge a delivery (signed read receipt)',
  description:
    "Record the recipient's signed read receipt of a notice in the log: 201 when recorded, 200 when it was already recorded.",
  what: 'read receipt',
  typ: ACK_TYP,
  answer: {},
});

/** GET /v1/notices/:id/acks */
export const getNoticeAcksSchema = listStatementsSchema({
  summary: 'Read receipts of one of my notices',
  description: 'The signed read receipts recorded for a notice the authenticated agency sent.',
  list: 'acks',
  item: statementItem('ack', 'acked_at'),
});

/** POST /v1/inbox/complaint */
export const postInboxComplaintSchema = postStatementSchema({
  summary: 'Complain about a notice received (signed, logged)',
  description:
    "Record the recipient's signed complaint about a notice delivered to it (schemas/complaint.schema.json) in the log: 201 when recorded, 200 when this same complaint was already recorded; a different complaint by the same agency about the same notice is 409 complaint-conflict.",
  what: 'complaint',
  typ: COMPLAINT_TYP,
  answer: { reason: { type: 'string' } },
});

/** GET /v1/notices/:id/complaints */
export const getNoticeComplaintsSchema = listStatementsSchema({
  summary: 'Complaints about one of my notices',
  description:
    "The recipients' signed complaints recorded about a notice the authenticated agency sent; an auditor (role audit) reads those about any notice, to check them against the log.",
  list: 'complaints',
  roles: 'publish or audit',
  item: statementItem('complaint', 'complained_at', { reason: { type: 'string', enum: [...COMPLAINT_REASONS] } }),
});

/** POST `post` records the caller's statement; GET `/v1/notices/:id/<list>` lists them to the notice's origin. */
function statementRoutes<R extends { notice_id: string; duplicate: boolean }>(
  app: FastifyInstance,
  opts: AckRouteOptions,
  s: {
    what: string;
    post: string;
    postSchema: object;
    record: (deps: AckDeps, agency: string, jws: string) => Promise<R>;
    list: string;
    listSchema: object;
    /** Whether auditors (role audit) list them too, besides the notice's origin (role publish). */
    auditors: boolean;
    read: (deps: AckDeps, noticeId: string, caller: string, auditor: boolean) => Promise<unknown[]>;
  },
): void {
  app.post(s.post, { preHandler: app.requireRole('subscribe'), schema: s.postSchema }, async (request, reply) => {
    const agency = request.agency?.agencyId;
    if (!agency) throw new LiaisonError('unauthorized');
    if (typeof request.body !== 'string')
      throw new LiaisonError('unsupported-media-type', {
        publicDetail: `send the ${s.what} as application/jose (a compact JWS)`,
      });
    const recorded = await s.record(opts, agency, request.body.trim());
    request.trace.notice_id = recorded.notice_id;
    reply.code(recorded.duplicate ? 200 : 201);
    return recorded;
  });

  app.get(
    `/v1/notices/:id/${s.list}`,
    { preHandler: app.requireRole(s.auditors ? ['publish', 'audit'] : 'publish'), schema: s.listSchema },
    async (request, reply) => {
      const id = (request.params as { id: string }).id;
      request.trace.notice_id = id;
      const auditor = s.auditors && (request.agency?.roles.includes('audit') ?? false);
      const listed = await s.read(opts, id, request.agency?.agencyId ?? '', auditor);
      reply.header('cache-control', 'no-store');
      return { notice_id: id, [s.list]: listed };
    },
  );
}

/**
 * Read receipts and complaints: statements a recipient signs about a notice.
 *  POST /v1/inbox/ack                (subscribe) body: the recipient's compact JWS (application/jose)
 *  GET  /v1/notices/:id/acks         (publish)   the receipts of one's own notice
 *  POST /v1/inbox/complaint          (subscribe) body: the recipient's compact JWS (application/jose)
 *  GET  /v1/notices/:id/complaints   (publish)   the complaints about one's own notice; (audit) about any
 */
export const ackRoutes: FastifyPluginAsync<AckRouteOptions> = async (app, opts) => {
  // The largest statement is a complaint (COMPLAINT_KIND.maxBytes); each kind checks its own limit.
  app.addContentTypeParser('application/jose', { parseAs: 'string', bodyLimit: 16_384 }, (_req, body, done) =>
    done(null, body),
  );
  statementRoutes(app, opts, {
    what: 'read receipt',
    post: '/v1/inbox/ack',
    postSchema: postInboxAckSchema,
    record: recordAck,
    list: 'acks',
    listSchema: getNoticeAcksSchema,
    auditors: false,
    read: listAcks,
  });
  statementRoutes(app, opts, {
    what: 'complaint',
    post: '/v1/inbox/complaint',
    postSchema: postInboxComplaintSchema,
    record: recordComplaint,
    list: 'complaints',
    listSchema: getNoticeComplaintsSchema,
    auditors: true,
    read: listComplaints,
  });
};
