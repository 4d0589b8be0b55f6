import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LiaisonError, problemCodes, type ProblemCode } from '../core/errors.js';
import { natsUnavailable } from '../nats/errors.js';

export const PROBLEM_TYPE_BASE = 'urn:liaison:problem:';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail?: string;
  instance: string;
  errors?: { path: string; message: string }[];
}

/** Fastify's own errors that a client can cause, mapped to our codes. */
const fastifyCodes: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad-request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad-request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad-request',
  FST_ERR_VALIDATION: 'bad-request',
  FST_ERR_NOT_FOUND: 'not-found',
  FST_ERR_BAD_URL: 'bad-request',
  FST_ERR_ASYNC_CONSTRAINT: 'bad-request',
};

/** Normalise anything thrown into a LiaisonError; unknown errors become `internal` (message kept for the log only). */
export function toLiaisonError(err: unknown): LiaisonError {
  if (err instanceof LiaisonError) return err;
  const e = err as {
    code?: string;
    statusCode?: number;
    message?: string;
    validation?: unknown;
    validationContext?: string;
  };
  if (e?.code === 'FST_ERR_VALIDATION' && Array.isArray(e.validation)) {
    // A route's schema refused the request: say where (a JSON Pointer into body, querystring or params) and why, as ajv words it.
    const where = (v: { instancePath?: string; message?: string }) =>
      `${e.validationContext ?? 'request'}${v.instancePath ?? ''} ${v.message ?? 'is not valid'}`;
    return new LiaisonError('bad-request', {
      detail: e.message,
      publicDetail: (e.validation as { instancePath?: string; message?: string }[]).slice(0, 5).map(where).join('; '),
      cause: err,
    });
  }
  const mapped = e?.code ? fastifyCodes[e.code] : undefined;
  if (mapped) return new LiaisonError(mapped, { detail: e.message, cause: err });
  if (e?.statusCode === 429) return new LiaisonError('rate-limited', { cause: err });
  // A nats.js error that a NATS call let through untranslated (a timeout while a node dies, a leader election):
  // the engine cannot answer now, which is a 503 with Retry-After, never a 500.
  if ((err as Error)?.name === 'NatsError') return natsUnavailable(err, 'NATS');
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return new LiaisonError('bad-request', { detail: e.message, cause: err });
  return new LiaisonError('internal', { detail: e?.message ?? String(err), cause: err });
}

export function problemBody(err: LiaisonError, requestId: string): ProblemBody {
  const body: ProblemBody = {
    type: PROBLEM_TYPE_BASE + err.code,
    title: problemCodes[err.code].title,
    status: err.status,
    code: err.code,
    instance: `urn:liaison:request:${requestId}`,
  };
  if (err.publicDetail !== undefined) body.detail = err.publicDetail;
  if (err.extras.errors !== undefined) body.errors = err.extras.errors;
  return body;
}

/**
 * Every 503 of `app` carries the configured Retry-After (`retryAfterSeconds`),
 * whatever answered it: a NATS call deep down, the pressure check, a readiness
 * probe. Errors made far from the edge do not know the setting, and none may
 * pick its own. Register before the routes.
 */
export function retryAfterOnEvery503(app: FastifyInstance, retryAfterSeconds: number): void {
  const value = String(retryAfterSeconds);
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (reply.statusCode === 503) reply.header('retry-after', value);
    done(null, payload);
  });
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, err: LiaisonError): FastifyReply {
  if (err.extras.retryAfter !== undefined) reply.header('retry-after', String(err.extras.retryAfter));
  return reply.code(err.status).type('application/problem+json').send(problemBody(err, request.id));
}
