/**
 * The HTTP edge before any route runs: how long a client may take to send a
 * request, how many connections it may hold, and what it is told when Node's
 * parser refuses its bytes.
 *
 * Node and Fastify wait forever by default (requestTimeout 0 in Fastify,
 * connectionTimeout 0): a client that sends all but the last byte of a large
 * body and stops holds that buffered body for good, and 1 800 of them from one
 * address took a gateway from 140 MB to 1.9 GB. Here every request must arrive
 * whole within `requestTimeoutMs` (Node checks every `checkEveryMs`), an idle
 * connection is closed after `idleTimeoutMs` (SSE streams write heartbeats, so
 * they are never idle), and connections are capped in all and per address.
 */
import { STATUS_CODES, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { LiaisonError, type ProblemCode } from '../core/errors.js';
import { problemBody } from './problem.js';

export interface ConnectionLimits {
  /** Headers and body of one request must arrive within this. */
  requestTimeoutMs: number;
  /** A connection with no traffic either way is closed after this. */
  idleTimeoutMs: number;
  /** Open connections in all; 0: no cap. */
  maxConnections: number;
  /** Open connections from one client address; 0: no cap (behind a proxy every client has its address). */
  maxConnectionsPerAddress: number;
}

/** Headers must arrive sooner than the whole request: a slow-header client holds no body, but still a socket. */
const headersTimeoutMs = (l: ConnectionLimits) => Math.min(l.requestTimeoutMs, 10_000);
/** How often Node looks for requests past their time (its default, 30 s, would let a 1 s limit run to 31 s). */
const checkEveryMs = (l: ConnectionLimits) => Math.max(250, Math.min(1000, Math.floor(l.requestTimeoutMs / 4)));

/** The Fastify constructor options that carry the limits to the server it creates (plain HTTP or HTTPS). */
export function serverTimeoutOptions(l: ConnectionLimits, https?: HttpsServerOptions) {
  const node = {
    requestTimeout: l.requestTimeoutMs,
    headersTimeout: headersTimeoutMs(l),
    connectionsCheckingInterval: checkEveryMs(l),
  };
  return {
    requestTimeout: l.requestTimeoutMs,
    connectionTimeout: l.idleTimeoutMs,
    // Fastify hands `http` to http.createServer and `https` to https.createServer, which takes the same server options.
    ...(https ? { https: { ...https, ...node } } : { http: node }),
  };
}

/** Cap connections in all (Node refuses past maxConnections) and per remote address (closed on arrival). */
export function capConnections(
  server: HttpServer | HttpsServer,
  l: ConnectionLimits,
  onRefused: (why: 'per-address') => void = () => undefined,
): void {
  if (l.maxConnections > 0) server.maxConnections = l.maxConnections;
  if (l.maxConnectionsPerAddress <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '?';
    const n = (open.get(address) ?? 0) + 1;
    if (n > l.maxConnectionsPerAddress) {
      onRefused('per-address');
      socket.destroy();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/** The problem a refusal by Node's HTTP parser gets: never Fastify's default JSON, never the path or a header echoed. */
export function clientErrorProblem(code: string | undefined): { status: number; code: ProblemCode; detail: string } {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, code: 'request-timeout', detail: 'the request did not arrive whole in time' };
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'headers-too-large',
        detail: 'the request headers are larger than the server accepts',
      };
    default:
      return { status: 400, code: 'bad-request', detail: 'the request is not well-formed HTTP/1.1' };
  }
}

/** Fastify's clientErrorHandler: an RFC 9457 problem written straight to the socket, then the socket closed. */
export function writeClientErrorProblem(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const p = clientErrorProblem(err.code);
  const body = JSON.stringify(problemBody(new LiaisonError(p.code, { publicDetail: p.detail }), randomUUID()));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? 'Error'}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
