import t from 'tap';
import { readCheckpointLag } from '../broker/log/checkpoint-lag.js';
import { STREAMS } from '../broker/core/stream-names.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);

const seizureReport = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });

async function gauge(opsUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${opsUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

t.test('entries no checkpoint covers are counted, with the age of the oldest', async (t) => {
  // A checkpointer that publishes only the empty tree's checkpoint within this test.
  const g = await startTestGateway(t, nats.url, {
    webhook: false,
    checkpointIntervalMs: 3_600_000,
    checkpointEveryEntries: 1_000_000,
    leaseTtlSeconds: 2,
  });
  const opsUrl = await g.gw.ops.listen({ host: '127.0.0.1', port: 0 });
  await waitFor(async () => (g.gw.checkpointer!.status.leader ? true : undefined), 'checkpointer leading');
  for (let i = 0; i < 3; i++) {
    const res = await g.post((await g.seal(seizureReport(), 'vn-customs')).jwe);
    t.equal(res.status, 202);
  }
  const logSize = (await g.gw.bus.streamInfo(STREAMS.log))!.lastSeq;
  const covered = g.gw.checkpointer!.status.checkpointSize;
  t.ok(logSize - covered >= 3, 'the three notices are not checkpointed');
  await new Promise((r) => setTimeout(r, 1100));
  const lag = await readCheckpointLag(g.gw.bus);
  t.equal(lag.entries, logSize - covered);
  t.ok(lag.oldestSeconds >= 1 && lag.oldestSeconds < 60, `oldest waited ${lag.oldestSeconds} s`);
  t.equal(await gauge(opsUrl, 'liaison_checkpoint_lag_entries'), logSize - covered);
  const seconds = await gauge(opsUrl, 'liaison_checkpoint_lag_oldest_seconds');
  t.ok(seconds !== undefined && seconds >= lag.oldestSeconds, 'the gauge says how long');
});

t.test('a checkpointer that caught up has no lag', async (t) => {
  const own = await startTestNats(t);
  const g = await startTestGateway(t, own.url, {
    webhook: false,
    checkpointIntervalMs: 200,
    checkpointEveryEntries: 1,
  });
  const opsUrl = await g.gw.ops.listen({ host: '127.0.0.1', port: 0 });
  for (let i = 0; i < 2; i++) t.equal((await g.post((await g.seal(seizureReport(), 'vn-customs')).jwe)).status, 202);
  const logSize = (await g.gw.bus.streamInfo(STREAMS.log))!.lastSeq;
  t.ok(logSize >= 2);
  await waitFor(
    async () => (g.gw.checkpointer!.status.checkpointSize === logSize ? true : undefined),
    'the log checkpointed',
    60_000,
  );
  t.same(await readCheckpointLag(g.gw.bus), { entries: 0, oldestSeconds: 0 });
  t.equal(await gauge(opsUrl, 'liaison_checkpoint_lag_entries'), 0);
  t.equal(await gauge(opsUrl, 'liaison_checkpoint_lag_oldest_seconds'), 0);
});
