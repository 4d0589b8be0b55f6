import type { FastifyPluginAsync } from 'fastify';
import { LiaisonError } from '../../core/errors.js';
import { integrity } from '../../core/integrity.js';
import type { StorePort } from '../../core/store-port.js';
import { STREAMS } from '../../core/stream-names.js';
import { sendProblem } from '../problem.js';

/** What /readyz needs besides NATS: the checkpointer's status (it exists only once the gateway has started its roles). */
export interface HealthOptions {
  bus: StorePort;
  checkpointer?: () => { readonly status: { halted: { index: number; reason: string } | null } } | null;
}

/**
 * Where a finding is, as /readyz shows it to anyone: a stream and sequence as
 * they are, a KV bucket and revision without the key (a registry key names an
 * agency, a jti key the agency that used it). The key is in the error log line.
 */
export const publicWhere = (where: string): string => where.replace(/^([^/#]+)\/.*@(\d+)$/, '$1@$2');

const problemSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'source', 'where', 'reason'],
  properties: {
    kind: { type: 'string', enum: ['integrity-finding', 'checkpointer-halted'] },
    source: { type: 'string' },
    where: { type: 'string' },
    reason: { type: 'string' },
    at: { type: 'string' },
    count: { type: 'integer' },
  },
} as const;
const statusSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'ready', 'degraded'] },
    problems: { type: 'array', items: problemSchema },
  },
} as const;

/** GET /healthz */
export const getHealthzSchema = {
  summary: 'Liveness',
  description:
    'The process answers. Also served, with /readyz and /metrics, by the operations listener (plain HTTP, opsHost:opsPort, no client certificate in any TLS mode), which the container HEALTHCHECK calls.',
  tags: ['operations'],
  security: [],
  response: { 200: statusSchema },
} as const;

/** GET /readyz */
export const getReadyzSchema = {
  summary: 'Readiness',
  description:
    'NATS is connected and every JetStream stream answers; 503 unavailable otherwise (no counts: nothing about the traffic is public). `status` is `ready`, or `degraded` (still 200: the gateway ingests and routes) with `problems`: integrity findings (a malformed or foreign message skipped in a bucket or stream: source, where, reason, when; never content) and a halted checkpointer.',
  tags: ['operations'],
  security: [],
  response: { 200: statusSchema },
} as const;

export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, { bus, checkpointer }) => {
  /** Liveness: the process answers. */
  app.get('/healthz', { schema: getHealthzSchema }, async () => ({ status: 'ok' }));

  /**
   * Readiness. 503 when NATS is not connected or a stream does not answer: the
   * gateway cannot take notices. 200 `degraded` with `problems` when it still
   * takes and routes notices but something needs the operator: an integrity
   * finding (a malformed or foreign message skipped; where it is and why, never
   * its content) or a halted checkpointer. A load balancer must not pull a
   * gateway that still ingests (every gateway reads the same NATS: pulling one
   * for a bad message would pull them all); alert on `degraded` instead.
   */
  app.get('/readyz', { schema: getReadyzSchema }, async (request, reply) => {
    const fail = (detail: string) =>
      sendProblem(request, reply, new LiaisonError('unavailable', { detail, publicDetail: detail }));
    if (!bus.isConnected()) return fail('NATS is not connected');
    try {
      for (const name of Object.values(STREAMS))
        if (!(await bus.streamInfo(name))) throw new Error(`no stream ${name}`);
    } catch {
      return fail('a JetStream stream is not reachable');
    }
    const problems: {
      kind: 'integrity-finding' | 'checkpointer-halted';
      source: string;
      where: string;
      reason: string;
      at?: string;
      count?: number;
    }[] = [];
    const halted = checkpointer?.()?.status.halted;
    if (halted)
      problems.push({
        kind: 'checkpointer-halted',
        source: 'log',
        where: `log index ${halted.index}`,
        reason: halted.reason,
      });
    for (const f of integrity.list()) problems.push({ kind: 'integrity-finding', ...f, where: publicWhere(f.where) });
    return problems.length === 0 ? { status: 'ready' } : { status: 'degraded', problems };
  });
};
