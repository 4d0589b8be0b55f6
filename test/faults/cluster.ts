import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { freePort, startLocalNats, type LocalNats } from '../../broker/nats/local-server.js';
import { natsServerBin } from '../helpers/nats.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ClusterNode {
  name: string;
  port: number;
  clusterPort: number;
  storeDir: string;
  server: LocalNats | null;
}

export interface TestCluster {
  nodes: ClusterNode[];
  /** All three client URLs, comma-separated (what NATS_URL takes). */
  url: string;
  start(i: number): Promise<void>;
  /** Stop node i by its PID (SIGKILL: a crash, not a shutdown). */
  kill(i: number): Promise<void>;
  stop(i: number): Promise<void>;
  /** Wait until JetStream answers (a meta leader is elected). */
  waitForJetStream(ms?: number): Promise<void>;
}

/**
 * Three nats-server processes on loopback forming one JetStream cluster
 * (`--cluster`, `--routes` to the other two, `--server_name nN`), each with its
 * own store dir. Every process is stopped by its PID at teardown.
 */
export async function startTestCluster(t: Teardown, size = 3): Promise<TestCluster> {
  const bin = natsServerBin();
  const root = mkdtempSync(join(tmpdir(), 'liaison-cluster-'));
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push({
      name: `n${i + 1}`,
      port: await freePort(),
      clusterPort: await freePort(),
      storeDir: join(root, `n${i + 1}`),
      server: null,
    });
  }
  const start = async (i: number) => {
    const n = nodes[i]!;
    const routes = nodes
      .filter((_, j) => j !== i)
      .map((o) => `nats://127.0.0.1:${o.clusterPort}`)
      .join(',');
    n.server = await startLocalNats({
      bin,
      storeDir: n.storeDir,
      port: n.port,
      args: [
        '--server_name',
        n.name,
        '--cluster_name',
        'liaison-test',
        '--cluster',
        `nats://127.0.0.1:${n.clusterPort}`,
        '--routes',
        routes,
      ],
    });
  };
  const cluster: TestCluster = {
    nodes,
    url: nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(','),
    start,
    async kill(i) {
      await nodes[i]!.server?.stop('SIGKILL');
      nodes[i]!.server = null;
    },
    async stop(i) {
      await nodes[i]!.server?.stop();
      nodes[i]!.server = null;
    },
    async waitForJetStream(ms = 30_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        try {
          const nc = await connect({ servers: cluster.url.split(','), reconnect: false, timeout: 1000 });
          try {
            const jsm = await nc.jetstreamManager({ timeout: 1000 });
            await jsm.getAccountInfo();
            return;
          } finally {
            await nc.close();
          }
        } catch (e) {
          if (Date.now() > deadline) throw new Error(`JetStream cluster not ready: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
  };
  // If the test process dies before teardown (an uncaught error at top level), do not leave servers behind.
  const killAll = () => {
    for (const n of nodes)
      if (n.server && n.server.child.exitCode === null && n.server.child.signalCode === null)
        process.kill(n.server.pid, 'SIGKILL');
  };
  process.once('exit', killAll);
  t.teardown(async () => {
    process.off('exit', killAll);
    for (let i = 0; i < nodes.length; i++) await cluster.stop(i);
    rmSync(root, { recursive: true, force: true });
  });
  await Promise.all(nodes.map((_, i) => start(i)));
  await cluster.waitForJetStream();
  return cluster;
}
