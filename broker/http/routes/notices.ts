import type { FastifyPluginAsync } from 'fastify';
import { LiaisonError } from '../../core/errors.js';
import type { IngestFn } from '../../ingest/pipeline.js';

export const receiptResponseSchema = {
  type: 'object',
  required: ['receipt', 'notice_id', 'log_index', 'received_at', 'sha256', 'recipients'],
  properties: {
    receipt: { type: 'string', description: 'Compact JWS by the broker signing key (typ liaison-receipt+jws) over the claims below.' },
    notice_id: { type: 'string' },
    log_index: { type: 'integer' },
    received_at: { type: 'string' },
    sha256: { type: 'string' },
    recipients: { type: 'array', items: { type: 'string' } },
  },
};

export const noticesRoutes: FastifyPluginAsync<{ ingest: IngestFn; bodyLimitBytes: number; mediaTypes: readonly string[] }> = async (app, opts) => {
  // Envelopes are taken as raw text; nothing else (JSON included) reaches the pipeline.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser([...opts.mediaTypes], { parseAs: 'string', bodyLimit: opts.bodyLimitBytes }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('*', (_req, _payload, done) => done(new LiaisonError('unsupported-media-type', { publicDetail: `send one of: ${opts.mediaTypes.join(', ')}` })));

  app.post('/v1/notices', { schema: { response: { 202: receiptResponseSchema } } }, async (request, reply) => {
    const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (typeof request.body !== 'string') throw new LiaisonError('unsupported-media-type', { publicDetail: `send one of: ${opts.mediaTypes.join(', ')}` });
    const result = await opts.ingest(request.body, mediaType, request.trace);
    request.trace.outcome = result.duplicate ? 'duplicate' : 'accepted';
    if (result.duplicate) reply.header('liaison-duplicate', 'true');
    return reply.code(202).send({ receipt: result.receipt, ...result.claims });
  });
};
