import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { connect } from 'nats';

/** Find the nats-server binary: an explicit path, then PATH, then Debian's /usr/sbin. */
export function findNatsServer(explicit?: string | null): string | null {
  if (explicit) return existsSync(explicit) ? explicit : null;
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/sbin',
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/bin',
  ];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, 'nats-server');
    if (existsSync(p)) return p;
  }
  return null;
}

export const NATS_INSTALL_HINT =
  'nats-server was not found. Install it (Debian/Ubuntu: sudo apt-get install nats-server; or see https://docs.nats.io/running-a-nats-service/introduction/installation), or set NATS_URL to a running server with JetStream.';

/** A free TCP port on the loopback interface. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolvePort(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Whether host:port can be listened on now. */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolveFree(false));
    srv.listen(port, host, () => srv.close(() => resolveFree(true)));
  });
}

export interface LocalNatsOptions {
  bin: string;
  storeDir: string;
  port?: number;
  host?: string;
  /** Extra command-line arguments (cluster routes, server name...). */
  args?: string[];
  /** Milliseconds to wait until the server accepts connections. */
  readyTimeoutMs?: number;
  /** Credentials for the readiness probe, when the config (`-c`) requires authentication. */
  readyAuth?: { user: string; pass: string };
  /**
   * The config file (`-c` in args) has its own `jetstream { store_dir: ... }` block: pass no `-js -sd`.
   * Needed for a server that is reloaded (SIGHUP, e.g. after `liaison nats creds`): nats-server 2.9
   * turns JetStream off on a reload when it was enabled only on the command line.
   */
  jetstreamInConfig?: boolean;
  /**
   * Everything from this config file (listen host:port, jetstream, accounts): the command line is
   * only `-c FILE` (nothing secret in /proc/<pid>/cmdline), `args` and `jetstreamInConfig` are not
   * used, and `port` (and `host`) must be those the file listens on. The gateway's own child
   * (broker/main.ts, broker/nats/creds-files.ts) runs this way, with authentication.
   */
  configFile?: string;
}

export interface LocalNats {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Stop by PID (SIGTERM, then SIGKILL after a grace period) and wait for exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Start a nats-server child with JetStream on a loopback port and wait until it accepts clients. */
export async function startLocalNats(opts: LocalNatsOptions): Promise<LocalNats> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.configFile && opts.port === undefined)
    throw new Error('startLocalNats: configFile needs the port the file listens on');
  const port = opts.port ?? (await freePort(host));
  mkdirSync(opts.storeDir, { recursive: true });
  const js = opts.jetstreamInConfig ? [] : ['-js', '-sd', opts.storeDir];
  const argv = opts.configFile
    ? ['-c', opts.configFile]
    : ['-a', host, '-p', String(port), ...js, ...(opts.args ?? [])];
  const child = spawn(opts.bin, argv, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString('utf8');
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `nats://${host}:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`nats-server exited with code ${child.exitCode}: ${stderr.trim().slice(-500)}`);
    try {
      const nc = await connect({ servers: url, reconnect: false, timeout: 500, ...(opts.readyAuth ?? {}) });
      await nc.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nats-server did not become ready on ${url}: ${stderr.trim().slice(-500)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const pid = child.pid as number;
  return {
    url,
    port,
    pid,
    child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, signal);
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
