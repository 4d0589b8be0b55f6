import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNatsServer, startLocalNats, type LocalNats } from '../../broker/nats/local-server.js';

export interface TestNats extends LocalNats {
  storeDir: string;
  /** Start again on the same port and store (after stop()). */
  restart(): Promise<TestNats>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** The nats-server binary (NATS_SERVER_BIN, else PATH and the usual places); a test without it fails, it is not skipped. */
export function natsServerBin(): string {
  const bin = findNatsServer(process.env.NATS_SERVER_BIN ?? null);
  if (!bin) throw new Error('nats-server is not installed (apt-get install nats-server)');
  return bin;
}

/** A real nats-server for one test file: JetStream on, a temp store dir, a free loopback port; stopped by its PID at teardown. */
export async function startTestNats(t: Teardown, opts: { port?: number; storeDir?: string } = {}): Promise<TestNats> {
  const bin = natsServerBin();
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'liaison-nats-'));
  const server = await startLocalNats({ bin, storeDir, ...(opts.port ? { port: opts.port } : {}) });
  const handle: TestNats = {
    ...server,
    storeDir,
    stop: (s) => server.stop(s),
    restart: () => startTestNats(t, { port: server.port, storeDir }),
  };
  t.teardown(async () => {
    await server.stop();
    if (!opts.storeDir) rmSync(storeDir, { recursive: true, force: true });
  });
  return handle;
}
