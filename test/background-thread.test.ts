/**
 * The router and the checkpointer on the background thread (broker/background):
 * a notice is routed and checkpointed end to end through it, its log lines and
 * metrics reach the gateway's, it runs at a lower CPU priority than everything
 * else in the process, and it is started again when it dies.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { Writable } from 'node:stream';
import { BackgroundThread } from '../broker/background/thread.js';
import { loadConfig } from '../broker/config/config.js';
import { createLogger } from '../broker/core/logger.js';
import { readThreadCpu } from '../broker/metrics/thread-cpu.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);

/** nice of every thread of this process, by thread id (field 19 of /proc/self/task/<tid>/stat). */
function threadNice(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}

t.test('a notice is routed and checkpointed on the background thread, at a lower priority', async (t) => {
  const before = new Set(threadNice().keys());
  // The process's own priority (0 unless the suite itself runs under `nice`).
  const own = getPriority();
  const low = own === 7 ? 8 : 7;
  const g = await startTestGateway(t, nats.url, { checkpointEveryEntries: 1, backgroundNice: low });
  await waitFor(
    () => (g.gw.router?.leading && g.gw.checkpointer?.status.leader ? true : undefined),
    'both roles leading on the thread',
  );
  const notice = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH', 'KH'],
  });
  const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
  t.equal(res.status, 202, 'accepted');
  await waitFor(() => (g.gw.router!.routed >= 1 ? true : undefined), 'routed by the thread');
  await waitFor(
    () => (g.gw.checkpointer!.status.checkpointSize > res.json.log_index ? true : undefined),
    'a checkpoint over the notice',
  );

  const routedLine = await waitFor(
    () =>
      g.logLines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.event === 'notice-routed' && l.notice_id === notice.id),
    "the thread's log line in the gateway log",
  );
  t.equal(routedLine.thread, 'background', 'the line says which thread wrote it');
  t.equal(routedLine.deliveries, 2, 'two deliveries (TH and KH)');

  const metrics = await g.gw.ops.inject({ method: 'GET', url: '/metrics' });
  t.match(
    metrics.body,
    /^liaison_router_notices_routed_total 1$/m,
    "the thread's routing is counted in the gateway's metrics",
  );
  t.match(metrics.body, /^liaison_deliveries_written_total 2$/m, 'and its deliveries');
  t.match(
    metrics.body,
    /^liaison_leader\{role="router"\} 1$/m,
    'the router is shown as pulling (every routing gateway: no lease)',
  );
  t.match(metrics.body, /^liaison_leader\{role="checkpointer"\} 1$/m, 'the checkpointer lease as held');

  // The background thread and the threads it started (the sealing worker; under the test's TypeScript loader also its
  // module-hooks thread) run at nice `low`; the main thread and every thread that was there before (V8's and libuv's pools,
  // which serve ingest) at the process's own priority.
  const nice = threadNice();
  t.ok(
    [...nice.values()].filter((n) => n === low).length >= 2,
    'the background thread and its sealing worker are lowered',
  );
  t.equal(nice.get(process.pid), own, 'the main thread is not');
  t.same(
    [...before].filter((tid) => nice.has(tid) && nice.get(tid) !== own),
    [],
    'nor any thread older than the gateway',
  );
  t.equal([...nice.values()].filter((n) => n !== low && n !== own).length, 0, 'no thread got another value');

  // The per-thread CPU metric names the lowered threads as background and sealing, and only them.
  const cpu = (body: string, thread: string) =>
    Number(new RegExp(`^liaison_thread_cpu_seconds_total\\{thread="${thread}"\\} (\\S+)$`, 'm').exec(body)?.[1]);
  const after = (await g.gw.ops.inject({ method: 'GET', url: '/metrics' })).body;
  const cpuNow = readThreadCpu();
  const lowered = [...threadNice()]
    .filter(([, n]) => n === low)
    .reduce((sum, [tid]) => sum + (cpuNow.get(tid) ?? 0), 0);
  t.ok(cpu(after, 'background') > 0, 'the background thread has CPU time');
  t.ok(cpu(after, 'sealing') > 0, 'and the sealing worker');
  t.ok(
    cpu(after, 'background') + cpu(after, 'sealing') <= lowered + 0.05,
    'both counted from the lowered threads alone',
  );
  t.ok(
    cpu(after, 'main') >= cpuNow.get(process.pid)! - 0.5 && cpu(after, 'main') <= cpuNow.get(process.pid)!,
    "main is this process's main thread",
  );
});

t.test("backgroundThread false: the same roles on the gateway's event loop", async (t) => {
  // A NATS of its own: another gateway's data dir holds another key-encryption key.
  const own = await startTestNats(t);
  const g = await startTestGateway(t, own.url, { backgroundThread: false });
  await waitFor(() => (g.gw.router?.leading ? true : undefined), 'the router leading in process');
  const notice = sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
  });
  t.equal((await g.post((await g.seal(notice, 'vn-customs')).jwe)).status, 202);
  await waitFor(() => (g.gw.router!.routed >= 1 ? true : undefined), 'routed in process');
  const line = g.logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.event === 'notice-routed' && l.notice_id === notice.id);
  t.ok(line, 'routed');
  t.notOk(line?.thread, 'not by a thread');
  t.equal([...threadNice().values()].filter((n) => n !== getPriority()).length, 0, 'no thread lowered');
  const body = (await g.gw.ops.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(body, /^liaison_thread_cpu_seconds_total\{thread="background"\} 0$/m, 'no background thread, no CPU for it');
  t.match(
    body,
    /^liaison_thread_cpu_seconds_total\{thread="sealing"\} [0-9.e-]*[1-9]/m,
    'the sealing worker this event loop started is counted',
  );
});

/** A BackgroundThread running the stand-in worker, with the gateway's metrics observer replaced by a recorder. */
function standIn(how: string) {
  const lines: string[] = [];
  const logger = createLogger(
    'info',
    new Writable({ write: (c: Buffer, _e, cb) => (lines.push(...c.toString().split('\n').filter(Boolean)), cb()) }),
  );
  const events: unknown[] = [];
  const config = loadConfig({}, { brokerId: how, natsUrl: nats.url });
  const opts = {
    config,
    natsUrl: nats.url,
    holder: 'test',
    logger,
    observer: {
      routed: (w: number, s: number) => void events.push(['routed', w, s]),
      failed: (k: string) => void events.push(['failed', k]),
    },
    workerUrl: new URL('./helpers/failing-background-worker.ts', import.meta.url),
    startTimeoutMs: 20_000,
  };
  return { lines, events, opts };
}

t.test('a thread that cannot start fails the start, with its reason', async (t) => {
  await t.rejects(BackgroundThread.start(standIn('fail-at-start').opts), /could not start: no NATS here/);
  await t.rejects(BackgroundThread.start(standIn('exit-at-start').opts), /exited \(4\) before it started/);
});

t.test('a thread that dies is started again, with a growing delay, until closed', async (t) => {
  const s = standIn('crash-after-ready');
  const thread = await BackgroundThread.start(s.opts);
  await waitFor(() => (s.events.length >= 2 ? true : undefined), 'the observer events replayed');
  t.same(
    s.events.slice(0, 2),
    [
      ['routed', 2, 1],
      ['failed', 'retry'],
    ],
    'router metrics replayed in order',
  );
  const exits = () =>
    s.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'background-thread-exited');
  await waitFor(() => (exits().length >= 2 ? true : undefined), 'two exits', 10_000);
  t.same(
    exits()
      .slice(0, 2)
      .map((l) => [l.code, l.restart_in_ms]),
    [
      [3, 1000],
      [3, 2000],
    ],
    'each exit logged with its code; the delay doubles',
  );
  t.ok(s.lines.filter((l) => l.includes('stand-in started')).length >= 2, 'started again (its log line came twice)');
  t.ok(thread.router!.routed >= 2, 'routed counts add up across restarts');
  await thread.close();
  const after = exits().length;
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(exits().length, after, 'no restart after close');
  t.equal(thread.router!.leading, false, 'not leading once closed');
});

t.test('a thread that does not stop its roles is terminated by close, which ends', async (t) => {
  const s = standIn('deaf');
  const thread = await BackgroundThread.start({ ...s.opts, closeWaitMs: 300 });
  const t0 = Date.now();
  await thread.close();
  t.ok(Date.now() - t0 < 5000, 'close ended');
  t.ok(
    s.lines.some((l) => l.includes('"event":"background-close-timeout"')),
    'and said it had to terminate the thread',
  );
  t.equal(thread.router!.leading, false, 'not leading once terminated');
});
