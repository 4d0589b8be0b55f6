import type { FastifyPluginAsync } from 'fastify';
import { LiaisonError } from '../../core/errors.js';
import type { IngestFn } from '../../ingest/pipeline.js';

export const receiptResponseSchema = {
  type: 'object',
  required: ['receipt', 'notice_id', 'log_index', 'received_at', 'sha256', 'recipients'],
  properties: {
    receipt: {
      type: 'string',
      description: 'Compact JWS by the broker signing key (typ liaison-receipt+jws) over the claims below.',
    },
    notice_id: { type: 'string' },
    log_index: { type: 'integer' },
    received_at: { type: 'string' },
    sha256: { type: 'string' },
    recipients: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** POST /v1/notices: the body is an envelope of one of the media types the registered formats open. */
export const postNoticeSchema = (mediaTypes: readonly string[]) => ({
  summary: 'Post a notice',
  description:
    "Send a notice as an envelope: a compact JWE (ECDH-ES+A256KW or ECDH-ES, A256GCM) to one of the broker's encryption keys (GET /v1/keys) around a compact JWS (EdDSA or ES256, typ liaison-notice+jws) by an active signing key of the agency named in the notice's origin. " +
    'The answer is a broker-signed receipt with the log index. A retry of the same bytes returns the original receipt (header liaison-duplicate: true); the same id with other bytes is 409 duplicate-conflict. No bearer token: the signature inside the envelope is the proof of origin.',
  tags: ['notices'],
  security: [],
  body: {
    description: 'The envelope, as text.',
    content: Object.fromEntries(
      mediaTypes.map((m) => [
        m,
        {
          schema: {
            type: 'string',
            description:
              m === 'application/jose'
                ? 'Compact JWE (five base64url parts joined by dots) around the compact JWS of the notice JSON.'
                : 'The envelope in this media type.',
          },
        },
      ]),
    ),
  },
  response: { 202: receiptResponseSchema },
});

export const noticesRoutes: FastifyPluginAsync<{
  ingest: IngestFn;
  bodyLimitBytes: number;
  mediaTypes: readonly string[];
}> = async (app, opts) => {
  // Envelopes are taken as raw text; nothing else (JSON included) reaches the pipeline.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    [...opts.mediaTypes],
    { parseAs: 'string', bodyLimit: opts.bodyLimitBytes },
    (_req, body, done) => done(null, body),
  );
  app.addContentTypeParser('*', (_req, _payload, done) =>
    done(new LiaisonError('unsupported-media-type', { publicDetail: `send one of: ${opts.mediaTypes.join(', ')}` })),
  );

  app.post('/v1/notices', { schema: postNoticeSchema(opts.mediaTypes) }, async (request, reply) => {
    const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (typeof request.body !== 'string')
      throw new LiaisonError('unsupported-media-type', { publicDetail: `send one of: ${opts.mediaTypes.join(', ')}` });
    const body = request.body;
    // With mTLS the notice's signer must be the client certificate's agency (checked before anything is stored).
    const result = await opts.ingest(body, mediaType, request.trace, {
      clientCertAgency: request.clientCert?.agency ?? null,
    });
    request.trace.outcome = result.duplicate ? 'duplicate' : 'accepted';
    if (result.duplicate) reply.header('liaison-duplicate', 'true');
    return reply.code(202).send({ receipt: result.receipt, ...result.claims });
  });
};
