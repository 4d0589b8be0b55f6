/**
 * `liaison notice send` retries a 503 as the integration guide asks: after the
 * server's Retry-After (seconds or an HTTP-date), the same envelope, bounded in
 * attempts and in total wait; `liaison admin` changes go through the same
 * policy, also after no answer. A stub in front of a real gateway answers 503
 * to the first POSTs and PUTs (or drops them) and passes everything else through.
 */
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import { HttpClientError } from '../broker/agency-client/http.js';
import { ADMIN_RETRY, retryAfterMs, retrying } from '../broker/agency-client/retry.js';
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

const PROBLEM = JSON.stringify({
  type: 'about:blank',
  status: 503,
  code: 'unavailable',
  title: 'Service Unavailable',
  detail: 'try again later',
});

/** POST and PUT: the next answers from `plan` (a 503 with that Retry-After value, or none for null; 'drop': no answer); then through to the gateway. */
async function stub(plan: (string | null)[]) {
  const bodies: string[] = [];
  const authorizations: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const sends = req.method === 'POST' || req.method === 'PUT';
      if (sends) bodies.push(body.toString('utf8'));
      if (sends) authorizations.push(req.headers.authorization ?? '');
      const retryAfter = sends ? plan.shift() : undefined;
      if (retryAfter === 'drop') {
        req.socket.destroy();
        return;
      }
      if (retryAfter !== undefined) {
        res
          .writeHead(503, {
            'content-type': 'application/problem+json',
            ...(retryAfter === null ? {} : { 'retry-after': retryAfter }),
          })
          .end(PROBLEM);
        return;
      }
      const headers = {
        'content-type': req.headers['content-type'] ?? 'application/json',
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      };
      void fetch(`${gateway}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(sends ? { body } : {}),
      }).then(async (up) => {
        res
          .writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' })
          .end(Buffer.from(await up.arrayBuffer()));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies, authorizations };
}

const send = (url: string) =>
  runCli(['notice', 'send', sample, '--as', 'vn-customs', '--stamp', '--url', url, '--data-dir', g.dataDir]);

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

t.test(
  'NATS stopped, then restarted: the real gateway answers 503 with Retry-After, and the retry is accepted',
  async (t) => {
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
  },
);

t.test('Retry-After values', async (t) => {
  const now = Date.parse('2026-12-07T08:00:00Z');
  t.equal(retryAfterMs('5', now), 5000);
  t.equal(retryAfterMs(' 0 ', now), 0);
  t.equal(retryAfterMs('Mon, 07 Dec 2026 08:00:30 GMT', now), 30_000, 'an HTTP-date');
  t.equal(retryAfterMs('Mon, 07 Dec 2026 07:00:00 GMT', now), 0, 'a date in the past: no wait');
  for (const bad of [null, '', '-1', '1.5', '2026-12-07', 'soon', 'Mon, 99 Foo 2026 GMT', '99999999999'])
    t.equal(retryAfterMs(bad, now), undefined, `not a Retry-After: ${String(bad)}`);
});

t.test('no Retry-After: a doubling fallback wait; other answers are returned at once', async (t) => {
  const answers = [503, 503, 503, 202];
  const waits: number[] = [];
  const fetch = async () => new Response(null, { status: answers.shift() ?? 500 });
  const res = await retrying(fetch, {
    maxAttempts: 5,
    maxWaitMs: 60_000,
    fallbackWaitMs: 100,
    sleep: async (ms) => void waits.push(ms),
  })('http://x/');
  t.equal(res.status, 202);
  t.same(waits, [100, 200, 400]);
  const once = await retrying(async () => new Response(null, { status: 400 }), {
    maxAttempts: 5,
    maxWaitMs: 1,
    fallbackWaitMs: 1,
  })('http://x/');
  t.equal(once.status, 400);
});

t.test('an abort during the wait ends it', async (t) => {
  const abort = new AbortController();
  const fetch = async () => {
    setImmediate(() => abort.abort(new Error('stopped')));
    return new Response(null, { status: 503, headers: { 'retry-after': '30' } });
  };
  await t.rejects(
    retrying(fetch, { maxAttempts: 5, maxWaitMs: 60_000, fallbackWaitMs: 1 })('http://x/', { signal: abort.signal }),
    /stopped/,
  );
  const aborted = new AbortController();
  aborted.abort(new Error('already'));
  await t.rejects(
    retrying(async () => new Response(null, { status: 503 }), { maxAttempts: 2, maxWaitMs: 60_000, fallbackWaitMs: 1 })(
      'http://x/',
      { signal: aborted.signal },
    ),
    /already/,
  );
});

t.test('no answer: sent again only when the policy says so; the last error is thrown', async (t) => {
  const unanswered = new HttpClientError('cannot reach the broker');
  const waits: number[] = [];
  const lines: string[] = [];
  const policy = {
    maxAttempts: 3,
    maxWaitMs: 60_000,
    fallbackWaitMs: 100,
    retryUnanswered: (e: unknown) => e === unanswered,
    sleep: async (ms: number) => void waits.push(ms),
    report: (l: string) => void lines.push(l),
  };
  let calls = 0;
  const flaky = async () => {
    if (++calls < 3) throw unanswered;
    return new Response(null, { status: 200 });
  };
  t.equal((await retrying(flaky, policy)('http://x/')).status, 200);
  t.same(waits, [100, 200], 'the doubling fallback wait');
  t.equal(lines[0], 'no answer from the broker (cannot reach the broker); attempt 2 of 3 in 1 s');
  const count = (error: Error, p: typeof policy | Omit<typeof policy, 'retryUnanswered'>) => {
    calls = 0;
    return retrying(async () => {
      calls++;
      throw error;
    }, p)('http://x/');
  };
  await t.rejects(count(unanswered, policy), unanswered);
  t.equal(calls, 3, 'three attempts, no more');
  t.equal(lines.at(-1), 'no answer from the broker 3 times; giving up');
  await t.rejects(count(new Error('a bug'), policy), /a bug/);
  t.equal(calls, 1, 'another error: thrown at once');
  const { retryUnanswered: _, ...sendLike } = policy;
  await t.rejects(count(unanswered, sendLike), unanswered);
  t.equal(calls, 1, 'a policy without retryUnanswered (notice send): thrown at once');
  t.ok(
    ADMIN_RETRY.retryUnanswered?.(new HttpClientError('cannot reach the broker at ...')),
    'admin changes: a transport error is no answer',
  );
  t.notOk(ADMIN_RETRY.retryUnanswered?.(new Error('a bug')), 'admin changes: anything else is not');
});

t.test(
  'liaison admin: a 503 or no answer is retried through the same policy, with the same id and a fresh assertion',
  async (t) => {
    const op = (url: string) => ['--as', 'hub-operator', '--data-dir', g.dataDir, '--url', url];
    const got = await runCli(['admin', 'get-operation', '--operation', 'aircop', ...op(gateway)]);
    t.equal(got.code, 0, got.stderr);
    const record = join(g.dataDir, 'aircop.json');
    writeFileSync(record, got.stdout);
    const set = (url: string) => runCli(['admin', 'set-operation', '--file', record, ...op(url)]);

    const busy = await stub(['2']);
    const started = Date.now();
    const after503 = await set(busy.url);
    t.equal(after503.code, 0, after503.stderr + after503.stdout);
    t.match(after503.stdout, /event \S+ at log index \d+/);
    t.match(after503.stderr, /503 from the broker; attempt 2 of 3 in 2 s \(Retry-After\)/);
    t.ok(Date.now() - started >= 2000, 'waited what Retry-After asked');
    t.equal(busy.bodies.length, 2);
    t.equal(new Set(busy.bodies).size, 1, 'the same change, with its id, each time');
    t.equal(
      new Set(busy.authorizations).size,
      2,
      'a fresh client assertion on each try (the gateway accepts each once)',
    );

    const gone = await stub(['drop']);
    const afterDrop = await set(gone.url);
    t.equal(afterDrop.code, 0, afterDrop.stderr + afterDrop.stdout);
    t.match(afterDrop.stderr, /no answer from the broker \(.+\); attempt 2 of 3 in 1 s/);
    t.equal(gone.bodies.length, 2);

    const down = await stub(['drop', 'drop', 'drop']);
    const unanswered = await set(down.url);
    t.equal(unanswered.code, 1);
    t.equal(down.bodies.length, 3, 'three attempts, no more');
    t.match(
      unanswered.stderr,
      /no answer from the broker 3 times; giving up\nliaison admin set-operation: no answer from http:\/\/127\.0\.0\.1:\d+: .+; retry with --id [0-9a-f-]{36}\n$/,
    );

    const full = await stub(['0', '0', '0']);
    const refused = await set(full.url);
    t.equal(refused.code, 1);
    t.equal(full.bodies.length, 3);
    t.match(
      refused.stderr,
      /503 from the broker 3 times; giving up\nliaison admin set-operation: the gateway answered 503; retry later with --id [0-9a-f-]{36}\n$/,
    );
  },
);
