/**
 * Per-thread CPU by role (broker/metrics/thread-cpu.ts): the pure accounting
 * over successive scans, and the /proc reads it is fed from.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { currentThreadId, readThreadCpu, ThreadCpuAccount } from '../broker/metrics/thread-cpu.js';

const scan = (o: Record<number, number>) => new Map(Object.entries(o).map(([k, v]) => [Number(k), v]));

t.test('each thread counts for its role, others for other', async (t) => {
  const a = new ThreadCpuAccount(100);
  t.same(
    a.observe(scan({ 100: 2, 101: 1, 102: 0.5, 103: 0.25, 104: 3 }), { background: 103, sealing: 104 }),
    { main: 2, background: 0.25, sealing: 3, other: 1.5 },
    'the first scan: each thread since its start',
  );
  t.same(
    a.observe(scan({ 100: 2.5, 101: 1.125, 102: 0.5, 103: 1.25, 104: 3 }), { background: 103, sealing: 104 }),
    { main: 0.5, background: 1, sealing: 0, other: 0.125 },
    'later scans: what each thread ran since',
  );
});

t.test('a restarted thread continues its role; a thread that is gone is forgotten', async (t) => {
  const a = new ThreadCpuAccount(1);
  a.observe(scan({ 1: 1, 7: 4, 8: 2 }), { background: 7, sealing: 8 });
  // The background thread died and came back as 9 (its sealing worker as 10): their roles gain what the new threads ran.
  t.same(a.observe(scan({ 1: 1.5, 9: 0.5, 10: 0.25 }), { background: 9, sealing: 10 }), {
    main: 0.5,
    background: 0.5,
    sealing: 0.25,
    other: 0,
  });
  // The kernel hands 7 out again, to a pool thread this time: it starts from 0 as the new thread it is.
  t.same(a.observe(scan({ 1: 1.5, 7: 0.125, 9: 0.5, 10: 0.25 }), { background: 9, sealing: 10 }), {
    main: 0,
    background: 0,
    sealing: 0,
    other: 0.125,
  });
});

t.test('never a negative amount, whatever a scan says', async (t) => {
  const a = new ThreadCpuAccount(1);
  a.observe(scan({ 1: 5, 2: 3 }), {});
  t.same(
    a.observe(scan({ 1: 4, 2: 3 }), {}),
    { main: 0, background: 0, sealing: 0, other: 0 },
    'a reading lower than the last adds nothing',
  );
  t.same(
    a.observe(scan({ 1: 5.5, 2: 3 }), {}),
    { main: 0.5, background: 0, sealing: 0, other: 0 },
    'and the next counts from the highest seen',
  );
});

t.test(
  'the /proc reads: this thread, a worker, every live thread',
  { skip: process.platform !== 'linux' && 'Linux /proc only' },
  async (t) => {
    t.equal(currentThreadId(), process.pid, 'the main thread id is the process id');
    const worker = new Worker(
      "const { parentPort } = require('node:worker_threads'); const { readlinkSync } = require('node:fs'); const end = Date.now() + 200; while (Date.now() < end); parentPort.postMessage(Number(readlinkSync('/proc/thread-self').split('/').pop()));",
      { eval: true },
    );
    const tid = await new Promise<number>((resolve) => worker.once('message', resolve));
    const cpu = readThreadCpu();
    t.ok(cpu.get(process.pid)! > 0, 'the main thread has run');
    t.ok(cpu.get(tid)! >= 0.1, 'a worker that spun for 200 ms has at least 100 ms');
    await worker.terminate();
    t.notOk(readThreadCpu().has(tid), 'a thread that ended is not listed');
  },
);

t.test('readThreadCpu skips what it cannot read and answers empty without /proc', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-tasks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, '11'));
  writeFileSync(join(dir, '11', 'schedstat'), '2500000000 10 3\n');
  mkdirSync(join(dir, '12'));
  writeFileSync(join(dir, '12', 'schedstat'), 'garbage\n');
  mkdirSync(join(dir, '13'));
  t.same([...readThreadCpu(dir)], [[11, 2.5]], 'a thread with a readable schedstat only');
  t.same([...readThreadCpu(join(dir, 'missing'))], [], 'no task directory: no readings');
});
