/**
 * The bench reads each gateway's per-thread CPU from /metrics. Its gateways run
 * without the operations listener (a fixed port would clash between them), and
 * the API port serves /metrics only with a token: the bench's environment must
 * give one, and its scraper must send it, or the CPU-by-thread columns go blank.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchGatewayEnv, scrapeThreadCpu } from '../bench/levels.js';
import { readSlowCounters, slowAttribution } from '../bench/slow-attribution.js';
import { loadConfig } from '../broker/config/config.js';
import { THREAD_ROLES } from '../broker/metrics/thread-cpu.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

t.test("a bench gateway's /metrics answers the bench's scraper on the API port", async (t) => {
  const nats = await startTestNats(t);
  const dataDir = mkdtempSync(join(tmpdir(), 'liaison-bench-metrics-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = benchGatewayEnv({ port: 0, natsUrl: nats.url, dataDir });
  const config = loadConfig(env);
  t.equal(config.opsPort, 0, 'no operations listener');
  t.ok(config.metricsTokenFile, 'a metrics token file');
  const g = await startTestGateway(
    t,
    nats.url,
    { metricsTokenFile: config.metricsTokenFile, opsPort: config.opsPort },
    { dataDir },
  );
  const url = (await g.gw.app.listen({ host: '127.0.0.1', port: 0 })).replace('[::1]', '127.0.0.1');
  const cpu = await scrapeThreadCpu(url);
  t.ok(cpu, 'the scraper reads the per-thread CPU');
  t.same(Object.keys(cpu ?? {}).sort(), [...THREAD_ROLES].sort(), 'every thread role');
  t.equal((await fetch(`${url}/metrics`)).status, 401, 'and /metrics still needs the token');
  t.same(
    await readSlowCounters(url),
    { posts: 0, window: 0, gc: 0, event_loop: 0, nats: 0 },
    "and the slow posts' account, from the first scrape",
  );
});

t.test("a level's slow posts: each part a share of their time", async (t) => {
  const a = { posts: 2, window: 0.1, gc: 0.01, event_loop: 0.02, nats: 0.03 };
  const b = { posts: 6, window: 0.3, gc: 0.05, event_loop: 0.1, nats: 0.03 };
  t.same(slowAttribution(a, b), {
    posts: 4,
    windowMs: 200,
    ms: { gc: 40, event_loop: 80, nats: 0 },
    share: { gc: 0.2, event_loop: 0.4, nats: 0 },
  });
  t.same(slowAttribution(a, a).share, { gc: 0, event_loop: 0, nats: 0 }, 'no slow post: no shares');
});
