import type { FastifyPluginAsync } from 'fastify';
import { LiaisonError } from '../../core/errors.js';
import type { NatsBus } from '../../nats/connection.js';
import { STREAMS } from '../../nats/streams.js';
import { sendProblem } from '../problem.js';

const statusSchema = { type: 'object', properties: { status: { type: 'string' }, streams: { type: 'object', additionalProperties: { type: 'integer' } } } };

export const healthRoutes: FastifyPluginAsync<{ bus: NatsBus }> = async (app, { bus }) => {
  /** Liveness: the process answers. */
  app.get('/healthz', { schema: { summary: 'Liveness', description: 'The process answers (used by the container HEALTHCHECK).', tags: ['operations'], security: [], response: { 200: statusSchema } } }, async () => ({ status: 'ok' }));

  /** Readiness: NATS connected and the streams answer. */
  app.get('/readyz', { schema: { summary: 'Readiness', description: 'NATS is connected and every JetStream stream answers (message counts per stream); 503 unavailable otherwise.', tags: ['operations'], security: [], response: { 200: statusSchema } } }, async (request, reply) => {
    const fail = (detail: string) => sendProblem(request, reply, new LiaisonError('unavailable', { detail, publicDetail: detail, retryAfter: 5 }));
    if (!bus.isConnected()) return fail('NATS is not connected');
    try {
      const streams: Record<string, number> = {};
      for (const name of Object.values(STREAMS)) streams[name] = (await bus.jsm.streams.info(name)).state.messages;
      return { status: 'ready', streams };
    } catch {
      return fail('a JetStream stream is not reachable');
    }
  });
};
