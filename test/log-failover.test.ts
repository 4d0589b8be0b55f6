import t from 'tap';
import { waitFor } from './helpers/wait.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLog } from '../broker/audit/verify.js';
import { startTestGateway, sampleNotice, type TestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
// Two gateways of one broker (same data dir, same broker keys) on one NATS.
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-failover-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const overrides = { checkpointEveryEntries: 3, checkpointIntervalMs: 200, leaseTtlSeconds: 2 };
const g1 = await startTestGateway(t, nats.url, overrides, { dataDir });
const g2 = await startTestGateway(t, nats.url, overrides, { dataDir });

const post = async (g: TestGateway, n: number) => {
  for (let i = 0; i < n; i++) {
    const notice = sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
      tlp: 'AMBER',
    });
    const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
    if (res.status !== 202) throw new Error(JSON.stringify(res.json));
  }
};

t.test('one leader at a time; another takes over within the lease TTL; checkpoints stay consistent', async (t) => {
  const leader = await waitFor(() => [g1, g2].find((g) => g.gw.checkpointer!.status.leader), 'a leader');
  const other = leader === g1 ? g2 : g1;
  t.notOk(other.gw.checkpointer!.status.leader, 'only one leader');
  await post(leader, 7);
  await waitFor(() => (leader.gw.checkpointer!.status.checkpointSize === 7 ? true : undefined), 'checkpoint 7');

  // Keep posting while the leader goes away.
  const load = post(other, 8);
  const stoppedAt = Date.now();
  await leader.gw.checkpointer!.close();
  await waitFor(() => (other.gw.checkpointer!.status.leader ? true : undefined), 'the other instance to lead', 5000);
  const tookMs = Date.now() - stoppedAt;
  t.ok(tookMs < 2000 + 1000, `takeover in ${tookMs} ms (lease TTL 2 s)`);
  await load;
  await waitFor(
    () => (other.gw.checkpointer!.status.checkpointSize === 15 ? true : undefined),
    'checkpoint 15 from the new leader',
  );

  const archive = await exportArchive(
    other.gw.bus,
    other.config.brokerId,
    other.jwks.keys.filter((k) => k.use === 'sig'),
    other.gw.keyring,
  );
  const r = auditLog(archiveToAuditInput(archive));
  t.same(
    r.problems,
    [],
    'every checkpoint of both leaders verifies, is consistent with the ones before, and matches the entries',
  );
  t.equal(r.verifiedTreeSize, 15);
});
