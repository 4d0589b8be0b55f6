import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { LiaisonError } from '../../core/errors.js';
import type { NatsBus } from '../../nats/connection.js';
import type { AuthenticatedAgency } from '../../auth/client-assertion.js';
import { pumpSse, sseHeartbeat } from '../../../adapters/sse/pump.js';
import { checkFilter, followInbox, readInbox, type InboxFilter } from '../../routing/inbox.js';

export interface InboxRouteOptions {
  bus: NatsBus;
  /** Seconds between SSE heartbeat comment lines. */
  heartbeatSeconds: number;
  /**
   * Whether an open stream may go on: the agency still has the subscribe role
   * and the key that signed its assertion is still valid. Asked every
   * `recheckMs`; a stream whose answer turns false is ended. Absent: never ended.
   */
  stillAllowed?: (agency: AuthenticatedAgency) => Promise<boolean>;
  /** How often open streams are re-authorised (default 1000 ms). */
  recheckMs?: number;
  /** Open streams one agency may hold on this gateway; past it 429 (default 8). */
  maxStreamsPerAgency?: number;
}

const MAX_LIMIT = 500;
const DEFAULT_LIMIT = 100;

const deliverySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cursor', 'notice_id', 'operation', 'origin', 'type', 'tlp', 'log_index', 'received_at'],
  properties: {
    cursor: { type: 'integer' },
    notice_id: { type: 'string' },
    operation: { type: 'string' },
    origin: {
      type: 'object',
      additionalProperties: false,
      required: ['country', 'agency'],
      properties: { country: { type: 'string' }, agency: { type: 'string' } },
    },
    type: { type: 'string' },
    tlp: { type: 'string' },
    log_index: { type: 'integer' },
    received_at: { type: 'string' },
    // One of three: a JWE (default), an OpenPGP message for agencies with delivery_format openpgp, or the
    // origin's end-to-end envelope as received (end-to-end operations, docs/end-to-end.md).
    jwe: { type: 'string' },
    openpgp: { type: 'string' },
    // Neither, when the notice was erased: the broker-signed erasure record in its place.
    erased: {
      type: 'object',
      additionalProperties: false,
      required: ['event_id', 'erased_at', 'record'],
      properties: {
        event_id: { type: 'string' },
        erased_at: { type: 'string' },
        record: {
          type: 'string',
          description:
            'Compact JWS by the broker (typ liaison-erasure+jws; keys: GET /v1/keys) of {notice_id, event_id, erased_at, log_index}.',
        },
      },
    },
    e2e: { type: 'string' },
  },
} as const;

const querySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'string', maxLength: 20 },
    limit: { type: 'string', maxLength: 6 },
    operation: { type: 'string', maxLength: 64 },
    origin: { type: 'string', maxLength: 2 },
    type: { type: 'string', maxLength: 64 },
  },
} as const;

type InboxQuery = { after?: string; limit?: string; operation?: string; origin?: string; type?: string };

const bad = (publicDetail: string) => new LiaisonError('bad-request', { publicDetail });

function cursorOf(v: string | undefined, what: string): number {
  if (v === undefined || v === '') return 0;
  if (!/^\d{1,15}$/.test(v)) throw bad(`${what} must be a stream position (a non-negative integer)`);
  return Number(v);
}

function filterOf(request: FastifyRequest): InboxFilter {
  const q = request.query as InboxQuery;
  const agency = request.agency?.agencyId;
  if (!agency) throw new LiaisonError('unauthorized');
  return checkFilter({ agency, operation: q.operation, origin: q.origin, type: q.type });
}

/** GET /v1/inbox */
export const getInboxSchema = {
  summary: 'Read the inbox',
  description:
    "A page of the deliveries addressed to the authenticated agency, after the cursor `after` (a DELIVERIES stream position); continue from `next`. Each delivery's `jwe` is a JWE to the agency key around the origin's signed notice: the JSON text of a flattened JWE (RFC 7516 §7.2.2), or a compact JWE for deliveries stored before that form. Role subscribe.",
  tags: ['inbox'],
  security: [{ clientAssertion: [] }],
  querystring: querySchema,
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['deliveries', 'next'],
      properties: { deliveries: { type: 'array', items: deliverySchema }, next: { type: 'integer' } },
    },
  },
} as const;

/** GET /v1/inbox/stream */
export const getInboxStreamSchema = {
  summary: 'Follow the inbox (Server-Sent Events)',
  description:
    'text/event-stream of `delivery` events (id = cursor; data = a delivery as in GET /v1/inbox) after `after` or Last-Event-ID, with heartbeat comments. Role subscribe.',
  tags: ['inbox'],
  security: [{ clientAssertion: [] }],
  produces: ['text/event-stream'],
  querystring: querySchema,
} as const;

/**
 * An agency reads the deliveries addressed to it, and only those: the subject
 * filter always starts with `deliveries.<the authenticated agency>.`.
 * Cursors are DELIVERIES stream sequences.
 */
export const inboxRoutes: FastifyPluginAsync<InboxRouteOptions> = async (app, opts) => {
  const live = new Set<AbortController>();
  const perAgency = new Map<string, number>();
  const maxStreams = opts.maxStreamsPerAgency ?? 8;
  // Open event streams would keep the server from closing: end them first.
  app.addHook('preClose', async () => {
    for (const c of live) c.abort();
  });
  // A stream is authorised once, when it opens; a key revoked or a role removed since must end it, within a second.
  const streams = new Map<AbortController, { agency: AuthenticatedAgency; end: (why: string) => void }>();
  if (opts.stillAllowed) {
    const check = opts.stillAllowed;
    const timer = setInterval(() => {
      for (const [, s] of streams)
        void check(s.agency).then(
          (ok) => ok || s.end('access revoked'),
          () => undefined,
        );
    }, opts.recheckMs ?? 1000);
    timer.unref();
    app.addHook('onClose', async () => clearInterval(timer));
  }

  app.get('/v1/inbox', { preHandler: app.requireRole('subscribe'), schema: getInboxSchema }, async (request, reply) => {
    const q = request.query as InboxQuery;
    const filter = filterOf(request);
    const after = cursorOf(q.after, 'after');
    const limit = q.limit === undefined ? DEFAULT_LIMIT : cursorOf(q.limit, 'limit');
    if (limit < 1 || limit > MAX_LIMIT) throw bad(`limit must be between 1 and ${MAX_LIMIT}`);
    const page = await readInbox(opts.bus, filter, after, limit);
    reply.header('cache-control', 'no-store');
    return page;
  });

  app.get(
    '/v1/inbox/stream',
    { preHandler: app.requireRole('subscribe'), schema: getInboxStreamSchema },
    async (request, reply) => {
      const q = request.query as InboxQuery;
      const filter = filterOf(request);
      const lastEventId = request.headers['last-event-id'];
      // Last-Event-ID (a reconnecting EventSource) wins over ?after=.
      const after =
        typeof lastEventId === 'string' && lastEventId !== ''
          ? cursorOf(lastEventId, 'Last-Event-ID')
          : cursorOf(q.after, 'after');

      const agency = request.agency as AuthenticatedAgency;
      const open = perAgency.get(agency.agencyId) ?? 0;
      if (open >= maxStreams)
        throw new LiaisonError('rate-limited', {
          publicDetail: `at most ${maxStreams} open inbox streams per agency`,
          retryAfter: 5,
        });
      perAgency.set(agency.agencyId, open + 1);
      const abort = new AbortController();
      live.add(abort);
      const raw = reply.raw;
      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      });
      // The response's 'close' is the client going away (the request's fires as soon as its body is read).
      raw.once('close', () => abort.abort());
      streams.set(abort, {
        agency,
        end: (why) => {
          if (abort.signal.aborted) return;
          request.log.warn(
            { event: 'inbox-stream-revoked', agency: agency.agencyId },
            'inbox stream ended: the agency may no longer read',
          );
          if (!raw.writableEnded) raw.write(`: ${why}\n\n`);
          abort.abort();
        },
      });
      const stopHeartbeat = sseHeartbeat(raw, opts.heartbeatSeconds * 1000, abort.signal);
      raw.write(`retry: 2000\n: stream of ${filter.agency}, after ${after}\n\n`);
      let sent = 0;
      try {
        const events = (async function* () {
          for await (const d of followInbox(opts.bus, filter, after, abort.signal))
            yield { id: d.cursor, event: 'delivery', data: d };
        })();
        sent = await pumpSse(events, raw, abort.signal);
      } catch (e) {
        request.log.warn(
          { event: 'inbox-stream-failed', agency: filter.agency, err: { message: (e as Error).message } },
          'inbox stream ended by an error',
        );
      } finally {
        stopHeartbeat();
        live.delete(abort);
        streams.delete(abort);
        const left = (perAgency.get(agency.agencyId) ?? 1) - 1;
        if (left <= 0) perAgency.delete(agency.agencyId);
        else perAgency.set(agency.agencyId, left);
        request.log.info({ event: 'inbox-stream-closed', agency: filter.agency, sent }, 'inbox stream closed');
        if (!raw.writableEnded) raw.end();
      }
    },
  );
};
