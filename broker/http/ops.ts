/**
 * The operations listener: plain HTTP on its own address (opsHost:opsPort,
 * loopback by default) serving GET /healthz, /readyz and /metrics.
 *
 * Why a listener of its own: under `mtls: required` the API port refuses, in
 * the TLS handshake, every client without a network certificate, and a
 * container's HEALTHCHECK, a load balancer's probe or Prometheus has none; and
 * /metrics (traffic by problem code) is for the operator, not for every client
 * of the API. Nothing here takes a notice or reads an inbox.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { LiaisonError } from '../core/errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NatsBus } from '../nats/connection.js';
import { capConnections, serverTimeoutOptions, writeClientErrorProblem, type ConnectionLimits } from './connections.js';
import { metricsRoutePlugin } from './metrics.js';
import { retryAfterOnEvery503, sendProblem, toLiaisonError } from './problem.js';
import { RouteMethods } from './route-methods.js';
import { healthRoutes, type HealthOptions } from './routes/health.js';

export interface OpsDeps {
  logger: Logger;
  bus: NatsBus;
  metrics: Metrics;
  /** The bearer token of GET /metrics (metricsTokenFile); here too it is required when set. */
  metricsToken?: string | undefined;
  checkpointer?: HealthOptions['checkpointer'];
  /** Retry-After (seconds) of every 503 (config `retryAfterSeconds`): /readyz when not ready. */
  retryAfterSeconds: number;
}

/** A probe or a scrape is small and quick: a slow or crowded client here is cut off early. */
const OPS_LIMITS: ConnectionLimits = {
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 65_000,
  maxConnections: 64,
  maxConnectionsPerAddress: 0,
};

/** The operations app, without a listener (main.ts listens on opsHost:opsPort; tests on port 0). */
export async function buildOpsApp(deps: OpsDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // The cast picks Fastify's logger type for the instance's generics (as in app.ts).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ listener: 'ops' }) as FastifyBaseLogger,
    // A health check every few seconds would fill the log: only refusals and failures are logged.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    bodyLimit: 1024,
    return503OnClosing: true,
    clientErrorHandler: writeClientErrorProblem,
    frameworkErrors: (error, request, reply) => {
      void sendProblem(
        request,
        reply,
        new LiaisonError('bad-request', { detail: error.message, publicDetail: 'the request path is not a valid URL' }),
      );
    },
    ...serverTimeoutOptions(OPS_LIMITS),
  });
  capConnections(app.server, OPS_LIMITS);
  retryAfterOnEvery503(app, deps.retryAfterSeconds);
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff').header('cache-control', 'no-store');
  });
  app.setErrorHandler((error, request, reply) => {
    const err = toLiaisonError(error);
    if (err.status >= 500) request.log.error({ code: err.code, err: { message: err.message } }, 'request failed');
    else
      request.log.warn(
        { code: err.code, route: request.routeOptions.url ?? 'unmatched', detail: err.publicDetail },
        'request refused',
      );
    return sendProblem(request, reply, err);
  });
  const routeMethods = new RouteMethods();
  app.addHook('onRoute', (route) => routeMethods.add(route.url, route.method));
  app.setNotFoundHandler((request, reply) => {
    const allow = routeMethods.allowed(request.url.split('?', 1)[0] as string);
    if (allow.length > 0) {
      reply.header('allow', allow.join(', '));
      return sendProblem(
        request,
        reply,
        new LiaisonError('method-not-allowed', {
          publicDetail: `${request.method} is not served here; this path takes ${allow.join(', ')}`,
        }),
      );
    }
    return sendProblem(
      request,
      reply,
      new LiaisonError('not-found', {
        publicDetail: 'the operations listener serves GET /healthz, /readyz and /metrics',
      }),
    );
  });
  await app.register(healthRoutes, {
    bus: deps.bus,
    ...(deps.checkpointer ? { checkpointer: deps.checkpointer } : {}),
  });
  await app.register(metricsRoutePlugin, { metrics: deps.metrics, token: deps.metricsToken });
  return app;
}
