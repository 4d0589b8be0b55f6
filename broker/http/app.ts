import { randomUUID } from 'node:crypto';
import helmet from '@fastify/helmet';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { BrokerKeyring } from '../keys/broker-keys.js';
import type { IngestFn, IngestTrace } from '../ingest/pipeline.js';
import type { NatsBus } from '../nats/connection.js';
import { authPlugin, type AuthOptions } from './auth.js';
import { registerLimits, type LimitsOptions } from './limits.js';
import { clientCertPlugin, type ClientCertOptions } from './tls.js';
import { retryAfterOnEvery503, sendProblem, toLiaisonError } from './problem.js';
import { RouteMethods } from './route-methods.js';
import { capConnections, serverTimeoutOptions, writeClientErrorProblem, type ConnectionLimits } from './connections.js';
import { LiaisonError } from '../core/errors.js';
import { healthRoutes, type HealthOptions } from './routes/health.js';
import { keysRoutes } from './routes/keys.js';
import { noticesRoutes } from './routes/notices.js';
import { logRoutes, type LogRoutesOptions } from './routes/log.js';
import { inboxRoutes } from './routes/inbox.js';
import { agencyKeysRoutes } from './routes/inbox-keys.js';
import { operationMembersRoutes } from './routes/operation-members.js';
import { ackRoutes } from './routes/acks.js';
import { adminRoutes } from './routes/admin.js';
import type { KeyAdmin } from '../admin/key-admin.js';
import type { ReviewDue } from '../erasure/retention.js';
import { openapiPlugin } from './openapi.js';
import { metricsCountingPlugin, metricsRoutePlugin } from './metrics.js';
import type { Metrics } from '../metrics/metrics.js';

export interface AppDeps {
  logger: Logger;
  bus: NatsBus;
  keyring: BrokerKeyring;
  /** The key-lifecycle admin API (role operator); absent: not served. */
  admin?: KeyAdmin;
  /** The notices due for review, oldest first (GET /v1/admin/notices/review-due); absent: not served. */
  reviewDue?: (limit: number) => Promise<ReviewDue[]>;
  ingest: IngestFn;
  bodyLimitBytes: number;
  /** Envelope media types accepted by POST /v1/notices. */
  envelopeMediaTypes: readonly string[];
  auth: AuthOptions;
  /** Serve HTTPS with these node:https options (see tls.ts); plain HTTP without. */
  https?: import('node:https').ServerOptions;
  /** Client-certificate checks (mTLS optional or required); needs `https`. */
  clientCert?: ClientCertOptions;
  /** Proxies whose X-Forwarded-For names the client (addresses or CIDR ranges); none: the socket's address. */
  trustProxy?: string[];
  /** Request timeouts and connection caps (connections.ts); Node's defaults (none) without. */
  connections?: ConnectionLimits;
  /** Retry-After (seconds) of every 503 (config `retryAfterSeconds`). */
  retryAfterSeconds: number;
  /** Rate limits and back-pressure (limits.ts); none without. */
  limits?: LimitsOptions;
  /** Inbox reads (GET /v1/inbox, /v1/inbox/stream) and the member key directory. */
  inbox?: { heartbeatSeconds: number };
  /** Read receipts and complaints (POST /v1/inbox/ack and /v1/inbox/complaint, GET /v1/notices/:id/acks and /complaints); not served without. */
  acks?: { clockSkewSeconds: number; now?: () => Date };
  /** The signed log's stores; without them the /v1/log routes are not served. */
  log?: Omit<LogRoutesOptions, 'bus'>;
  /** The checkpointer's status for /readyz (a halted checkpointer is `degraded`); it starts after the app is built. */
  checkpointer?: HealthOptions['checkpointer'];
  /** Prometheus metrics of this gateway: requests are counted. */
  metrics?: Metrics;
  /** Bearer token of GET /metrics (metricsTokenFile): with it /metrics is served here too; without, only on the operations listener (ops.ts). */
  metricsToken?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    trace: IngestTrace & { outcome?: string; code?: string };
  }
}

/** The gateway as a Fastify instance, without a listener (tests use inject()). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // The cast picks Fastify's logger type for the instance's generics; without it the app is typed with pino's Logger.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    bodyLimit: deps.bodyLimitBytes,
    // Never let Fastify's ajv near a signed notice: the notice route takes the raw
    // body as a string and the pipeline validates with its own strict instance.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    return503OnClosing: true,
    // Never `true`: trusting every sender's X-Forwarded-For would let a client choose its own rate-limit key.
    ...(deps.trustProxy && deps.trustProxy.length > 0 ? { trustProxy: deps.trustProxy } : {}),
    // A refusal by Node's HTTP parser (malformed header, request timeout...) is a problem too, never Fastify's default JSON.
    clientErrorHandler: writeClientErrorProblem,
    // A path Fastify cannot decode (`/v1/inbox%ZZ`): its default answer quotes the path back.
    frameworkErrors: (error, request, reply) => {
      void sendProblem(
        request,
        reply,
        new LiaisonError('bad-request', { detail: error.message, publicDetail: 'the request path is not a valid URL' }),
      );
    },
    ...(deps.connections
      ? serverTimeoutOptions(deps.connections, deps.https)
      : deps.https
        ? { https: deps.https }
        : {}),
  });
  if (deps.connections) capConnections(app.server, deps.connections);
  retryAfterOnEvery503(app, deps.retryAfterSeconds);

  app.decorateRequest('trace', null as unknown as IngestTrace);
  app.addHook('onRequest', async (request, reply) => {
    request.trace = {};
    reply.header('x-request-id', request.id);
  });
  // One line per request: ids, labels, outcome and timing. Never bodies, tokens or keys. request.log carries reqId already.
  app.addHook('onResponse', async (request, reply) => {
    const t = request.trace;
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        agency: t.agency,
        notice_id: t.notice_id,
        operation: t.operation,
        outcome: t.outcome ?? (reply.statusCode < 400 ? 'ok' : 'refused'),
        code: t.code,
      },
      'request',
    );
  });

  app.setErrorHandler((error, request, reply) => {
    const err = toLiaisonError(error);
    request.trace.code = err.code;
    request.trace.outcome = 'refused';
    if (err.status >= 500) {
      request.log.error(
        {
          code: err.code,
          step: request.trace.step,
          err: { message: err.message, cause: (err.cause as Error | undefined)?.message },
        },
        'request failed',
      );
    } else {
      request.log.warn(
        { code: err.code, step: request.trace.step, reason: err.message, detail: err.publicDetail },
        'request refused',
      );
    }
    return sendProblem(request, reply, err);
  });
  const routeMethods = new RouteMethods();
  app.addHook('onRoute', (route) => routeMethods.add(route.url, route.method));
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0] as string;
    const allow = routeMethods.allowed(path);
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
    // The root has nothing of its own: say where the API is described.
    if (path === '/')
      return sendProblem(
        request,
        reply,
        new LiaisonError('not-found', {
          publicDetail: 'this is the Liaison API: its description is at /docs (OpenAPI 3.1, with /docs/json)',
        }),
      );
    return sendProblem(request, reply, toLiaisonError({ code: 'FST_ERR_NOT_FOUND', message: 'no route' }));
  });

  // Security headers on every answer (nosniff, no framing, no referrer...). The API answers JSON only, so its CSP
  // allows nothing; /docs (Swagger UI) sets its own, narrower than a page's default, on its routes. HSTS only over TLS:
  // a plain-HTTP gateway is a loopback or behind a TLS proxy, which sets its own.
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
    },
    hsts: deps.https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  });
  // Before any route: the client certificate is checked, then limits apply, on every route.
  if (deps.clientCert) await app.register(clientCertPlugin, deps.clientCert);
  if (deps.limits) await registerLimits(app, deps.limits);
  // Before the routes: the OpenAPI document is collected from their schemas as they are added.
  await app.register(openapiPlugin, { brokerId: deps.auth.brokerId });
  if (deps.metrics) await app.register(metricsCountingPlugin, { metrics: deps.metrics });
  if (deps.metrics && deps.metricsToken !== undefined)
    await app.register(metricsRoutePlugin, { metrics: deps.metrics, token: deps.metricsToken });
  await app.register(authPlugin, deps.auth);
  await app.register(healthRoutes, {
    bus: deps.bus,
    ...(deps.checkpointer ? { checkpointer: deps.checkpointer } : {}),
  });
  await app.register(keysRoutes, { keyring: deps.keyring });
  await app.register(noticesRoutes, {
    ingest: deps.ingest,
    bodyLimitBytes: deps.bodyLimitBytes,
    mediaTypes: deps.envelopeMediaTypes,
  });
  if (deps.log) await app.register(logRoutes, { bus: deps.bus, ...deps.log });
  await app.register(inboxRoutes, {
    bus: deps.bus,
    heartbeatSeconds: deps.inbox?.heartbeatSeconds ?? 15,
    // The same rules as when the stream opened: the agency in the registry with the subscribe role, its key still valid.
    stillAllowed: async (a) => {
      if (!deps.auth.registry().agency(a.agencyId)?.roles.includes('subscribe')) return false;
      return deps.auth.resolveSigner(a.kid).then(
        (s) => s.agencyId === a.agencyId,
        () => false,
      );
    },
  });
  await app.register(agencyKeysRoutes, { registry: deps.auth.registry });
  await app.register(operationMembersRoutes, { registry: deps.auth.registry });
  if (deps.admin)
    await app.register(adminRoutes, { admin: deps.admin, ...(deps.reviewDue ? { reviewDue: deps.reviewDue } : {}) });
  if (deps.acks)
    await app.register(ackRoutes, {
      bus: deps.bus,
      resolveSigner: deps.auth.resolveSigner,
      signer: () => deps.keyring.signing,
      storageKeys: deps.keyring,
      ...deps.acks,
    });
  return app;
}
