/**
 * GET /metrics (Prometheus text format) and the HTTP-side counting: requests
 * by route template, notices accepted and refused by problem code, inbox
 * deliveries by mode. Labels never carry ids or content.
 *
 * Where /metrics is served: always on the operations listener (ops.ts,
 * loopback by default); on the API port only when a token is configured, and
 * then only with it. Traffic by code is not for every client of the API.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { SSE_OBSERVER, type SseSink } from '../../adapters/sse/pump.js';
import { LiaisonError, type ProblemCode } from '../core/errors.js';
import { readSecretFile } from '../core/secret-file.js';
import type { Metrics } from '../metrics/metrics.js';

export const METRICS_PATH = '/metrics';
const NOTICES = '/v1/notices';
const INBOX = '/v1/inbox';
const INBOX_STREAM = '/v1/inbox/stream';

const routeOf = (request: FastifyRequest) => request.routeOptions.url ?? 'unmatched';

const TOKEN_SETTING = 'LIAISON_METRICS_TOKEN_FILE (config key "metricsTokenFile")';

/** The /metrics bearer token from its file (metricsTokenFile): one line, at least 32 characters, no spaces, or start-up stops. */
export function readMetricsToken(file: string): string {
  const token = readSecretFile(file, TOKEN_SETTING, { oneLine: true });
  if (token.length < 32 || /\s/.test(token))
    throw new Error(`${TOKEN_SETTING}: ${file} must hold one token of at least 32 characters`);
  return token;
}

/** Constant-time: both sides hashed first, so neither the length nor a prefix of the token leaks through timing. */
const sameToken = (a: string, b: string) =>
  timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());

/** The HTTP-side counting on the API app: every request, notices by outcome, inbox deliveries by mode. */
export const metricsCountingPlugin = fp<{ metrics: Metrics }>(async (app: FastifyInstance, { metrics }) => {
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    // The SSE pump writes to the raw response: give it the observer there.
    if (request.method === 'GET' && routeOf(request) === INBOX_STREAM)
      (reply.raw as unknown as SseSink)[SSE_OBSERVER] = metrics.sse;
  });

  app.addHook('preSerialization', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (request.method === 'GET' && routeOf(request) === INBOX && reply.statusCode === 200) {
      const n = (payload as { deliveries?: unknown[] } | null)?.deliveries?.length ?? 0;
      if (n > 0) metrics.deliveries.delivered('pull', n);
    }
    return payload;
  });

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = routeOf(request);
    metrics.httpRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (request.method === 'POST' && route === NOTICES) {
      if (reply.statusCode === 202)
        metrics.notice({ accepted: true, duplicate: request.trace?.outcome === 'duplicate' });
      else metrics.notice({ accepted: false, code: (request.trace?.code ?? 'internal') as ProblemCode });
    }
  });
});

/** GET /metrics; with a token, only with `Authorization: Bearer <token>` (401 unauthorized otherwise). */
export const metricsRoutePlugin = fp<{ metrics: Metrics; token?: string | undefined }>(
  async (app: FastifyInstance, { metrics, token }) => {
    app.get(
      METRICS_PATH,
      {
        logLevel: 'warn',
        schema: {
          summary: 'Prometheus metrics',
          description:
            'Prometheus text exposition: notices accepted and refused by code, ingest step latencies, deliveries by mode, router lag, log size, checkpoint age, NATS connection state, process metrics. On the API port only when metricsTokenFile is set, and then with `Authorization: Bearer <that token>` (401 unauthorized otherwise); without a token it is served on the operations listener (opsHost:opsPort) alone.',
          tags: ['operations'],
          security: [],
          produces: ['text/plain'],
          response: { 200: { description: 'Prometheus text format 0.0.4', type: 'string' } },
        },
      },
      async (request, reply) => {
        if (token !== undefined) {
          const m = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '');
          if (!m || !sameToken(m[1]!, token))
            throw new LiaisonError('unauthorized', {
              detail: 'metrics token missing or wrong',
              publicDetail: 'GET /metrics needs the metrics bearer token',
            });
        }
        const text = await metrics.render();
        return reply.type(metrics.contentType).header('cache-control', 'no-store').send(text);
      },
    );
  },
);
