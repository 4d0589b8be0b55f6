/**
 * Slow request bodies on loopback, bounded in count and time: a client that
 * sends all but the last byte of a large body and waits used to hold it for
 * good (Fastify's requestTimeout and connectionTimeout are 0 by default), and
 * 1 800 such connections took a gateway from 140 MB to 1.9 GB. Now each gets
 * a 408 problem within the request timeout, one address holds at most its
 * cap of connections, and another client is served meanwhile.
 */
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const PER_ADDRESS = 48;
const SLOW = 120; // from one address: PER_ADDRESS are let in, the rest closed on arrival
const DECLARED = 1_048_000;

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  webhook: false,
  requestTimeoutMs: 2000,
  maxConnectionsPerAddress: PER_ADDRESS,
  rateLimitMax: 0,
});
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const port = (g.gw.app.server.address() as { port: number }).port;

interface Slow {
  socket: Socket;
  answer: string;
  closed: Promise<void>;
}

/** Open a connection from `localAddress`, send headers and all but the last byte of the body, and keep it open. */
function slowPost(localAddress: string): Slow {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  const s: Slow = { socket, answer: '', closed: new Promise((r) => socket.once('close', () => r())) };
  socket.on('data', (d: Buffer) => (s.answer += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.once('connect', () => {
    socket.write(
      `POST /v1/notices HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/jose\r\nContent-Length: ${DECLARED}\r\n\r\n`,
    );
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let left = DECLARED - 1;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!socket.write(chunk.subarray(0, n))) return void socket.once('drain', pump);
      }
    };
    pump();
  });
  return s;
}

t.test(
  'a flood of slow bodies: capped per address, each ended by a 408 problem, memory bounded, others served',
  async (t) => {
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    t.teardown(() => clearInterval(sampler));

    const slow = Array.from({ length: SLOW }, () => slowPost('127.0.0.1'));
    // Another client, from another loopback address, while the flood holds its connections.
    await new Promise((r) => setTimeout(r, 500));
    const viaOther = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }, () =>
        s.write('GET /v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', () => resolve(text));
    });
    t.match(viaOther, /^HTTP\/1\.1 200 /, 'another client is served while the flood holds its connections');

    // Every slow connection ends within a bounded time, none is held open.
    const ended = await Promise.race([
      Promise.all(slow.map((s) => s.closed)).then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 20_000)),
    ]);
    t.ok(ended, 'every slow connection was closed by the gateway');
    const timedOut = slow.filter((s) => s.answer.startsWith('HTTP/1.1 408 '));
    const refused = slow.filter((s) => s.answer === '');
    t.equal(timedOut.length, PER_ADDRESS, `the ${PER_ADDRESS} connections let in each got 408`);
    t.equal(refused.length, SLOW - PER_ADDRESS, 'the rest were closed on arrival, unanswered');
    const body = JSON.parse(timedOut[0]!.answer.slice(timedOut[0]!.answer.indexOf('\r\n\r\n') + 4));
    t.equal(body.code, 'request-timeout');
    t.equal(body.status, 408);
    t.match(timedOut[0]!.answer, /content-type: application\/problem\+json/i);

    // The bodies held at once are the per-address cap's worth, not the flood's: a stated bound of 4 x that.
    const grownMb = (peak - before) / 1e6;
    t.ok(
      grownMb < (4 * PER_ADDRESS * DECLARED) / 1e6,
      `RSS grew by ${grownMb.toFixed(1)} MB during the flood (bound ${((4 * PER_ADDRESS * DECLARED) / 1e6).toFixed(0)} MB)`,
    );
    t.comment(`RSS before ${(before / 1e6).toFixed(1)} MB, peak ${(peak / 1e6).toFixed(1)} MB`);

    const after = await g.gw.app.inject({ method: 'GET', url: '/v1/keys' });
    t.equal(after.statusCode, 200, 'the gateway serves as before');
  },
);

t.test("Node's parser refusals are problems that echo nothing", async (t) => {
  const raw = (text: string) =>
    new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.write(text));
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => resolve(out));
      s.on('error', () => resolve(out));
    });
  const cases: [string, string, number, string][] = [
    ['a malformed header line', 'GET /v1/keys HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n', 400, 'bad-request'],
    [
      'Content-Length with Transfer-Encoding',
      'POST /v1/notices HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
      'bad-request',
    ],
    [
      '40 KB of headers',
      `GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`,
      431,
      'headers-too-large',
    ],
    [
      'a path with an invalid escape',
      'GET /v1/inbox%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      400,
      'bad-request',
    ],
  ];
  for (const [what, text, status, code] of cases) {
    const out = await raw(text);
    t.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), what);
    t.match(out, /content-type: application\/problem\+json/i, what);
    const body = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
    t.equal(body.code, code, what);
    t.notMatch(out, /v1\/keys|v1\/inbox|%ZZ|aaaa|bad header/, `${what}: nothing of the request echoed`);
  }
});
