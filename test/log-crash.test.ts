/**
 * The checkpointer leader crashes: its NATS connection is closed abruptly
 * (no lease release, nothing flushed on purpose) while notices keep coming.
 * Another instance takes the lease once it ages out (lease TTL) and resumes
 * from the last checkpoint; every checkpoint of both leaders verifies and is
 * consistent with the ones before (the exported archive verifies).
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLogWithOrigins } from '../broker/audit/key-history.js';
import { createLogger } from '../broker/core/logger.js';
import { Checkpointer, CHECKPOINTER_LEASE } from '../broker/log/checkpointer.js';
import { parseCheckpoint } from '../broker/log/checkpoint.js';
import { connectNats, type NatsBus } from '../broker/nats/connection.js';
import { LEASES_BUCKET } from '../broker/nats/kv-lease.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const TTL_MS = 2000;
const nats = await startTestNats(t);
// The gateway only ingests; the checkpointers below are separate "processes" (own NATS connections).
const g = await startTestGateway(t, nats.url, { checkpointer: false, leaseTtlSeconds: TTL_MS / 1000 });
const brokerId = g.config.brokerId;
const logLines: string[] = [];
const logger = createLogger(
  'info',
  new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString('utf8')), cb()) }),
);

async function checkpointerProcess(name: string): Promise<{ bus: NatsBus; cp: Checkpointer }> {
  const bus = await connectNats({ servers: nats.url, name, publishTimeoutMs: 2000, logger });
  const cp = await Checkpointer.create({
    bus,
    keyring: g.gw.keyring,
    logger,
    origin: brokerId,
    everyEntries: 3,
    everyMs: 200,
    leaseTtlMs: TTL_MS,
    holder: name,
  });
  t.teardown(async () => {
    await cp.close();
    await bus.close();
  });
  return { bus, cp };
}

const post = async (n: number) => {
  for (let i = 0; i < n; i++) {
    const notice = sampleNotice('seizure-report', {
      operation: 'mekong-dragon-6',
      origin: { country: 'VN', agency: 'vn-customs' },
      addressees: ['TH'],
      tlp: 'AMBER',
    });
    const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
    if (res.status !== 202) throw new Error(`post refused: ${res.status} ${JSON.stringify(res.json)}`);
  }
};

t.test(
  'the leader crashes without releasing the lease; another takes over after the TTL; checkpoints stay consistent',
  async (t) => {
    const a = await checkpointerProcess('checkpointer-a');
    a.cp.start();
    await waitFor(() => (a.cp.status.leader ? true : undefined), 'checkpointer A to lead');
    const b = await checkpointerProcess('checkpointer-b');
    b.cp.start();

    await post(10);
    await waitFor(() => (a.cp.status.checkpointSize === 10 ? true : undefined), 'checkpoint 10 from A');
    t.notOk(b.cp.status.leader, 'B follows while A holds the lease');

    // Crash under load: the connection goes away mid-stream, no lease release.
    const load = post(12);
    await waitFor(() => (a.cp.status.treeSize > 10 ? true : undefined), 'A to fold some of the new entries');
    void a.bus.nc.close().catch(() => undefined);
    const crashedAt = Date.now();
    t.comment(`A crashed with ${a.cp.status.treeSize} entries folded, ${a.cp.status.checkpointSize} checkpointed`);
    const leases = await g.gw.bus.kv(LEASES_BUCKET, { bindOnly: true });
    const held = await leases.get(CHECKPOINTER_LEASE);
    t.ok(
      held && held.operation === 'PUT' && JSON.parse(new TextDecoder().decode(held.value)).holder === 'checkpointer-a',
      'the lease is still held by the crashed leader',
    );

    await waitFor(() => (b.cp.status.leader ? true : undefined), 'checkpointer B to take the lease', TTL_MS + 5000);
    const tookMs = Date.now() - crashedAt;
    // Margin: B's polling period (TTL / 3) plus slack for the server's expiry sweep.
    t.ok(tookMs < TTL_MS + TTL_MS / 3 + 1500, `B leads ${tookMs} ms after the crash (lease TTL ${TTL_MS} ms)`);
    await load;
    await waitFor(() => (b.cp.status.checkpointSize === 22 ? true : undefined), 'checkpoint 22 from B');
    t.notOk(a.cp.status.leader, 'A no longer believes it leads');

    const archive = await exportArchive(
      g.gw.bus,
      brokerId,
      g.jwks.keys.filter((k) => k.use === 'sig'),
      g.gw.keyring,
    );
    const sizes = archive.checkpoints.map((c) => parseCheckpoint(c.note).checkpoint.treeSize);
    t.ok(sizes.includes(10) && sizes.at(-1) === 22, `checkpoints of both leaders: sizes ${sizes.join(', ')}`);
    t.same(
      sizes,
      [...sizes].sort((x, y) => x - y),
      'sizes never go back',
    );
    const r = await auditLogWithOrigins(archiveToAuditInput(archive));
    t.same(r.problems, [], 'every checkpoint verifies, is consistent with the one before, and matches the entries');
    t.equal(r.verifiedTreeSize, 22);
    t.equal(r.signaturesChecked, 22);
    t.ok(
      logLines.some((l) => l.includes('"checkpointer-leader"') && l.includes('checkpointer-b')),
      'B says it leads',
    );
  },
);
