/** The bench's reading of each router's share (bench/router-shares.ts): the pure arithmetic and the /metrics scrape. */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { routedTotal, sharesOf } from '../bench/router-shares.js';

t.test('shares and spread', async (t) => {
  t.same(sharesOf([100, 100, 100]), { shares: [0.333, 0.333, 0.333], spread: 0 }, 'even shares: no spread');
  t.same(sharesOf([120, 100, 80]), { shares: [0.4, 0.333, 0.267], spread: 0.333 }, 'spread against the largest');
  t.same(sharesOf([50, 0]), { shares: [1, 0], spread: 1 }, 'a router that routed nothing');
  t.same(sharesOf([0, 0]), { shares: [0, 0], spread: 0 }, 'nothing routed: no division by zero');
});

t.test("a gateway's routed counter, read from its /metrics with the bearer token", async (t) => {
  const seen: (string | undefined)[] = [];
  let body = '# HELP x\nliaison_router_notices_routed_total_other 9\nliaison_router_notices_routed_total 42\n';
  const server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(req.url === '/metrics' ? 200 : 404).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.equal(await routedTotal(url, 'tok'), 42, 'the counter itself, not a metric whose name starts the same');
  t.same(seen, ['Bearer tok']);
  body = 'liaison_up 1\n';
  await t.rejects(routedTotal(url, 'tok'), /no liaison_router_notices_routed_total/, 'a gateway without the counter');
});
