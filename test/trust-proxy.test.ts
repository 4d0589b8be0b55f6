/**
 * Rate limits key on the client address. X-Forwarded-For counts only from the
 * proxies named in trustProxy; otherwise any client could pick its own key by
 * sending the header, and spend or dodge the limit at will.
 */
import t from 'tap';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const limits = { webhook: false, router: false, checkpointer: false, rateLimitMax: 2, rateLimitWindowMs: 60_000 };

const keysAs = async (g: Awaited<ReturnType<typeof startTestGateway>>, forwardedFor: string) =>
  (
    await g.gw.app.inject({
      method: 'GET',
      url: '/v1/keys',
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': forwardedFor },
    })
  ).statusCode;

t.test('off by default: X-Forwarded-For is ignored, the socket address is the key', async (t) => {
  const g = await startTestGateway(t, (await startTestNats(t)).url, limits);
  t.same(
    [await keysAs(g, '203.0.113.1'), await keysAs(g, '203.0.113.2'), await keysAs(g, '203.0.113.3')],
    [200, 200, 429],
    'a new X-Forwarded-For each time does not dodge the limit',
  );
});

t.test('trustProxy names the proxy: each forwarded client has its own count', async (t) => {
  const g = await startTestGateway(t, (await startTestNats(t)).url, { ...limits, trustProxy: '127.0.0.1' });
  t.same(
    [await keysAs(g, '203.0.113.1'), await keysAs(g, '203.0.113.1'), await keysAs(g, '203.0.113.1')],
    [200, 200, 429],
    'one client over its limit',
  );
  t.equal(await keysAs(g, '203.0.113.2'), 200, 'another client behind the same proxy is served');
  const refused = g.logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'request refused');
  t.equal(refused?.code, 'rate-limited', 'the refusal is logged with its code');
  t.match(String(refused?.detail), /at most 2 requests per 60 s/, 'and its public detail');
});
