/**
 * `liaison notice send` retries a 503 as the integration guide asks: after the
 * server's Retry-After (seconds or an HTTP-date), the same envelope, bounded in
 * attempts and in total wait. A stub in front of a real gateway answers 503 to
 * the first POSTs and passes everything else through.
 */
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import { retryAfterMs, retrying } from '../broker/agency-client/retry.js';
import { STREAMS } from '../broker/nats/streams.js';
import { startTestGateway } from './helpers/gateway.js';
import { runCli } from './helpers/cli.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

const nats = await startTestNats(t);
// Retry-After 10 s: four waits (40 s) fit in notice send's 60 s bound, room for NATS to come back in the last test.
const g = await startTestGateway(t, nats.url, { publishTimeoutMs: 1000, retryAfterSeconds: 10 });
const gateway = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const sample = join(repoRoot, 'docs', 'examples', 'notices', 'seizure-report.json');
const noticeCount = async () => (await g.gw.bus.jsm.streams.info(STREAMS.notices)).state.messages;

const PROBLEM = JSON.stringify({ type: 'about:blank', status: 503, code: 'unavailable', title: 'Service Unavailable', detail: 'try again later' });

/** POST /v1/notices: the next answers from `plan` (a Retry-After value each, or null for none); then through to the gateway. */
async function stub(plan: (string | null)[]) {
  const bodies: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST') bodies.push(body.toString('utf8'));
      const retryAfter = req.method === 'POST' ? plan.shift() : undefined;
      if (retryAfter !== undefined) {
        res.writeHead(503, { 'content-type': 'application/problem+json', ...(retryAfter === null ? {} : { 'retry-after': retryAfter }) }).end(PROBLEM);
        return;
      }
      void fetch(`${gateway}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, ...(req.method === 'POST' ? { body } : {}) }).then(async (up) => {
        res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await up.arrayBuffer()));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies };
}

const send = (url: string) => runCli(['notice', 'send', sample, '--as', 'vn-customs', '--stamp', '--url', url, '--data-dir', g.dataDir]);

t.test('503 with Retry-After (seconds, then an HTTP-date): sent again, the same envelope, and accepted', async (t) => {
  const before = await noticeCount();
  const s = await stub(['1', new Date(Date.now() + 1000).toUTCString()]);
  const sent = await send(s.url);
  t.equal(sent.code, 0, sent.stderr + sent.stdout);
  t.match(sent.stdout, /^accepted: notice [0-9a-f-]{36} at log index \d+/);
  t.match(sent.stderr, /503 from the broker; attempt 2 of 5 in 1 s/);
  t.match(sent.stderr, /attempt 3 of 5/);
  t.equal(s.bodies.length, 3, 'three POSTs');
  t.equal(new Set(s.bodies).size, 1, 'the same sealed envelope each time');
  t.equal(await noticeCount(), before + 1, 'stored once');
});

t.test('503 on every attempt: gives up after the last one, exit 1', async (t) => {
  const s = await stub(['0', '0', '0', '0', '0', '0', '0']);
  const sent = await send(s.url);
  t.equal(sent.code, 1);
  t.equal(s.bodies.length, 5, 'five attempts, no more');
  t.match(sent.stderr, /503 from the broker 5 times; giving up/);
  t.match(sent.stdout, /^refused \(503 unavailable\)/);
});

t.test('a Retry-After past the bound on waiting: gives up at once, exit 1', async (t) => {
  const s = await stub(['3600']);
  const sent = await send(s.url);
  t.equal(sent.code, 1);
  t.equal(s.bodies.length, 1);
  t.match(sent.stderr, /asks to wait 3600 s: past the 60 s this command waits in all; giving up/);
});

t.test('NATS stopped, then restarted: the real gateway answers 503 with Retry-After, and the retry is accepted', async (t) => {
  const before = await noticeCount();
  await nats.stop();
  const refusals = () => g.logLines.filter((l) => l.includes('"code":"unavailable"')).length;
  const seen = refusals();
  const sending = send(gateway);
  await waitFor(() => (refusals() > seen ? true : undefined), 'a 503 to notice send', 20_000);
  await nats.restart();
  const sent = await sending;
  t.equal(sent.code, 0, sent.stderr + sent.stdout);
  t.match(sent.stderr, /503 from the broker; attempt 2 of 5 in 10 s/);
  t.match(sent.stdout, /^accepted: notice /);
  t.equal(await noticeCount(), before + 1, 'stored once');
});

t.test('Retry-After values', async (t) => {
  const now = Date.parse('2026-12-07T08:00:00Z');
  t.equal(retryAfterMs('5', now), 5000);
  t.equal(retryAfterMs(' 0 ', now), 0);
  t.equal(retryAfterMs('Mon, 07 Dec 2026 08:00:30 GMT', now), 30_000, 'an HTTP-date');
  t.equal(retryAfterMs('Mon, 07 Dec 2026 07:00:00 GMT', now), 0, 'a date in the past: no wait');
  for (const bad of [null, '', '-1', '1.5', '2026-12-07', 'soon', 'Mon, 99 Foo 2026 GMT', '99999999999']) t.equal(retryAfterMs(bad, now), undefined, `not a Retry-After: ${String(bad)}`);
});

t.test('no Retry-After: a doubling fallback wait; other answers are returned at once', async (t) => {
  const answers = [503, 503, 503, 202];
  const waits: number[] = [];
  const fetch = async () => new Response(null, { status: answers.shift() ?? 500 });
  const res = await retrying(fetch, { maxAttempts: 5, maxWaitMs: 60_000, fallbackWaitMs: 100, sleep: async (ms) => void waits.push(ms) })('http://x/');
  t.equal(res.status, 202);
  t.same(waits, [100, 200, 400]);
  const once = await retrying(async () => new Response(null, { status: 400 }), { maxAttempts: 5, maxWaitMs: 1, fallbackWaitMs: 1 })('http://x/');
  t.equal(once.status, 400);
});

t.test('an abort during the wait ends it', async (t) => {
  const abort = new AbortController();
  const fetch = async () => {
    setImmediate(() => abort.abort(new Error('stopped')));
    return new Response(null, { status: 503, headers: { 'retry-after': '30' } });
  };
  await t.rejects(retrying(fetch, { maxAttempts: 5, maxWaitMs: 60_000, fallbackWaitMs: 1 })('http://x/', { signal: abort.signal }), /stopped/);
  const aborted = new AbortController();
  aborted.abort(new Error('already'));
  await t.rejects(retrying(async () => new Response(null, { status: 503 }), { maxAttempts: 2, maxWaitMs: 60_000, fallbackWaitMs: 1 })('http://x/', { signal: aborted.signal }), /already/);
});
