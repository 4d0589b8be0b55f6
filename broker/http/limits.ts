/**
 * Flood protection from Fastify's own plugins, answered as RFC 9457 problems:
 * - @fastify/rate-limit: `max` requests per `windowMs` per key, the key being
 *   the agency of the client certificate (verified by TLS, so it cannot be
 *   spoofed) or else the client address → 429 `rate-limited` with Retry-After.
 *   The bearer token's agency is not used as a key: it is only known after the
 *   token is verified, and an unverified `iss` would let anyone spend another
 *   agency's quota.
 * - @fastify/under-pressure: event-loop delay, heap and RSS sampled every
 *   `sampleIntervalMs`; above a limit every request is answered 503
 *   `unavailable` with Retry-After until the sample is under the limit again.
 * Liveness (/healthz) is neither limited nor shed, so an orchestrator does not
 * kill a gateway that is only busy.
 */
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LiaisonError } from '../core/errors.js';
import { clientKey } from './tls.js';

export interface LimitsOptions {
  /** Requests per window per key; 0: no rate limit. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** 0 turns a check off. */
  maxEventLoopDelayMs: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;
  sampleIntervalMs: number;
}

const EXEMPT = new Set(['/healthz']);

/** Register both plugins on the root instance, before the routes. */
export async function registerLimits(app: FastifyInstance, opts: LimitsOptions): Promise<void> {
  if (opts.maxEventLoopDelayMs > 0 || opts.maxHeapUsedBytes > 0 || opts.maxRssBytes > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: opts.maxEventLoopDelayMs,
      maxHeapUsedBytes: opts.maxHeapUsedBytes,
      maxRssBytes: opts.maxRssBytes,
      sampleInterval: opts.sampleIntervalMs,
      // Thrown into the app's error handler: one problem format for every refusal, and the configured Retry-After (problem.ts).
      pressureHandler: async (request: FastifyRequest, _reply, type: string) => {
        if (EXEMPT.has(request.url)) return;
        throw new LiaisonError('unavailable', {
          detail: `under pressure: ${type}`,
          publicDetail: 'the broker is overloaded; retry later',
        });
      },
    });
  }
  if (opts.rateLimitMax > 0) {
    await app.register(rateLimit, {
      global: true,
      max: opts.rateLimitMax,
      timeWindow: opts.rateLimitWindowMs,
      keyGenerator: clientKey,
      allowList: (request: FastifyRequest) => EXEMPT.has(request.url),
      errorResponseBuilder: (_request, ctx) =>
        new LiaisonError('rate-limited', {
          detail: `rate limit of ${ctx.max} per window reached`,
          publicDetail: `at most ${ctx.max} requests per ${Math.round(opts.rateLimitWindowMs / 1000)} s`,
          retryAfter: Math.max(1, Math.ceil(ctx.ttl / 1000)),
        }),
    });
  }
}
