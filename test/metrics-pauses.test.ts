import t from 'tap';
import { Metrics } from '../broker/metrics/metrics.js';
import { PauseRecorder, unionWithin } from '../broker/metrics/pauses.js';

const busy = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('the union of intervals within a window counts overlapping waits once', async (t) => {
  t.equal(unionWithin([], 0, 10), 0);
  t.equal(unionWithin([[0, 5]], 2, 10), 3, 'clipped to the window');
  t.equal(
    unionWithin(
      [
        [4, 8],
        [0, 5],
        [20, 30],
      ],
      0,
      25,
    ),
    13,
    'unordered, overlapping, and past the end',
  );
  t.equal(unionWithin([[11, 12]], 0, 10), 0, 'outside');
});

t.test('a blocked event loop is located in time; NATS waits counted once', async (t) => {
  const r = new PauseRecorder();
  t.teardown(() => r.close());
  await tick(30);
  const before = Date.now();
  busy(80);
  await tick(20); // the late tick records the stall
  const after = Date.now();
  const parts = r.overlap(before, after);
  t.ok(parts.event_loop >= 60, `event loop stalled ${parts.event_loop} ms of the window`);
  t.ok(r.overlap(before - 5000, before - 1000).event_loop < 5, 'nothing where nothing blocked');
  r.natsWait(0.05, after);
  r.natsWait(0.03, after);
  t.equal(Math.round(r.overlap(after - 100, after).nats), 50);
});

t.test('a slow notice post is attributed on /metrics', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  t.teardown(() => m.close());
  const value = async (line: string) => {
    const text = await m.registry.metrics();
    const found = text.split('\n').find((l) => l.startsWith(line + ' '));
    return found === undefined ? undefined : Number(found.slice(line.length + 1));
  };
  m.pipeline.step('store', 0.02, true);
  m.httpRequest('POST', '/v1/notices', 202, 0.01);
  m.httpRequest('GET', '/v1/inbox', 200, 0.5);
  t.equal(await value('liaison_slow_notice_posts_total'), 0, 'fast posts and other routes are not counted');
  m.httpRequest('POST', '/v1/notices', 202, 0.04);
  t.equal(await value('liaison_slow_notice_posts_total'), 1);
  t.equal(await value('liaison_slow_notice_post_seconds_total{part="window"}'), 0.04);
  const nats = (await value('liaison_slow_notice_post_seconds_total{part="nats"}'))!;
  t.ok(nats >= 0.019 && nats <= 0.021, `the store step's 20 ms (${nats})`);
  t.equal(await value('liaison_slow_notice_post_seconds_total{part="gc"}'), 0);
});
