/**
 * The CLI's SSE reader (InboxClient.follow over clientFetch) reads the framing
 * the SSE spec allows, not only the gateway's own: CRLF or CR line ends,
 * chunks split anywhere (even inside a CRLF), `data:` without a space, data on
 * several lines. A stub server stands in for the gateway.
 */
import t from 'tap';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { clientFetch, HttpClientError } from '../broker/agency-client/http.js';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import type { InboxDelivery } from '../broker/core/inbox-delivery.js';
import { rejectsWith } from './helpers/assert-error.js';

const delivery = (cursor: number) => ({
  cursor,
  notice_id: `00000000-0000-4000-8000-00000000000${cursor}`,
  operation: 'aircop',
  jwe: 'a.b.c.d.e',
});

/** Each request to the stream gets `chunks` written one by one, then the end. */
async function stub(chunks: string[]) {
  const server = createServer((req, res: ServerResponse) => {
    if (!req.url?.startsWith('/v1/inbox/stream')) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const next = () => {
      const c = chunks.shift();
      if (c === undefined) return void res.end();
      res.write(c, () => setImmediate(next));
    };
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'k1' };

async function follow(url: string) {
  const client = new InboxClient({
    url,
    agency: 'vn-customs',
    signingKey,
    encryptionKey: {},
    brokerId: 'stub',
    fetch: clientFetch(url),
  });
  const got: InboxDelivery[] = [];
  let heartbeats = 0;
  const abort = new AbortController();
  for await (const d of client.follow({}, abort.signal, () => heartbeats++)) got.push(d);
  return { got, heartbeats };
}

t.test('CRLF-framed events, split inside the CRLF, are read', async (t) => {
  const one = JSON.stringify(delivery(1));
  const two = JSON.stringify(delivery(2));
  const url = await stub([
    ': connected\r\n\r\n',
    `id: 1\r\nevent: delivery\r\ndata: ${one}\r`,
    `\n\r\n`,
    `: heartbeat\r\n\r\nid: 2\r\nevent: delivery\r\ndata:${two}\r\n\r\n`,
  ]);
  const { got, heartbeats } = await follow(url);
  t.same(got, [delivery(1), delivery(2)], 'both deliveries');
  t.equal(heartbeats, 2, 'both comments');
});

t.test('CR line ends and data over several lines', async (t) => {
  const lines = JSON.stringify(delivery(3), null, 1).split('\n');
  const url = await stub([
    `event: delivery\r${lines.map((l) => `data: ${l}\r`).join('')}\r`,
    'event: other\ndata: {}\n\n',
  ]);
  t.same((await follow(url)).got, [delivery(3)], 'the data lines joined; other events ignored');
});

t.test('hostile streams end with a clear error', async (t) => {
  await t.rejects(follow(await stub(['event: delivery\r\ndata: {not json\r\n\r\n'])), {
    code: 'stream-malformed',
    message: /not JSON/,
  });
  const huge = 'x'.repeat(1024 * 1024);
  await t.rejects(follow(await stub(['event: delivery\ndata: ', ...Array.from({ length: 9 }, () => huge)])), {
    code: 'stream-malformed',
    message: /cannot be read/,
  });
});

t.test("the HTTP client's transport errors: one line that says what to do; an abort stays an abort", async (t) => {
  // localhost may resolve to ::1 and 127.0.0.1: undici then fails with an AggregateError of both.
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  for (const base of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
    await t.rejects(clientFetch(base)(`${base}/v1/keys`), {
      name: 'HttpClientError',
      message: `cannot reach the broker at ${base}: connection refused (is the gateway running? --url or LIAISON_URL)`,
    });
  }
  await rejectsWith(
    t,
    clientFetch('http://127.0.0.1:6000')('http://127.0.0.1:6000/v1/keys'),
    HttpClientError,
    'client-request-failed',
    { message: /fetch refuses that port/ },
  );
  const url = await stub([': open\n\n']);
  const abort = new AbortController();
  abort.abort();
  await t.rejects(clientFetch(url)(`${url}/v1/inbox/stream`, { signal: abort.signal }), { name: 'AbortError' });
});
