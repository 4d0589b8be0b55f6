/**
 * The background thread (started by thread.ts): the router and the
 * checkpointer on an event loop of their own, with their own NATS connection,
 * registry watch and broker keyring (taken up from NATS KV like any other
 * instance's), at a lower CPU priority than the gateway's HTTP thread.
 *
 * Log lines go to the gateway's log destination through the parent (batched);
 * metrics and role status go to the parent every STATUS_EVERY_MS when changed.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../core/logger.js';
import { integrity } from '../core/integrity.js';
import { loadOrCreateBrokerKeys } from '../keys/broker-keys.js';
import { defaultKekPath, KeyringStore, loadOrCreateKek } from '../keys/keyring-store.js';
import { connectNats } from '../nats/connection.js';
import { currentThreadId } from '../metrics/thread-cpu.js';
import { RegistryStore } from '../registry/store.js';
import { createRegistryValidator } from '../schemas/notice-validator.js';
import type { RouterObserver } from '../routing/router.js';
import type { BackgroundStatus, BackgroundWorkerData, FromWorker, ObserverEvent, ToWorker } from './protocol.js';
import { createBackgroundRoles, type BackgroundRoles } from './roles.js';

if (!parentPort) throw new Error('the background worker must run as a worker thread');
const port = parentPort;
const send = (m: FromWorker) => port.postMessage(m);
const STATUS_EVERY_MS = 50;
const LOG_BATCH_MS = 20;

/** Log lines batched to the parent: one message per LOG_BATCH_MS, not one per line. */
let lines: string[] = [];
let logTimer: NodeJS.Timeout | undefined;
const flushLogs = () => {
  clearTimeout(logTimer);
  logTimer = undefined;
  if (lines.length === 0) return;
  send({ type: 'log', lines });
  lines = [];
};
const logger = createLogger((workerData as BackgroundWorkerData).config.logLevel, {
  write(line: string) {
    lines.push(line);
    logTimer ??= setTimeout(flushLogs, LOG_BATCH_MS);
  },
}).child({ thread: 'background' });

/**
 * Lower this thread's CPU priority (Linux: a thread is a task, and setpriority on its id affects it alone; threads it
 * starts later, such as the sealing worker, inherit it). Elsewhere, or when refused, it runs at the gateway's priority.
 */
function lowerPriority(nice: number): void {
  if (nice === 0 || process.platform !== 'linux') return;
  try {
    const tid = currentThreadId();
    if (tid === undefined) throw new Error('no /proc/thread-self');
    setPriority(tid, nice);
  } catch (e) {
    logger.warn(
      { event: 'background-nice-failed', err: { message: (e as Error).message } },
      'could not lower the background thread priority',
    );
  }
}

async function main(): Promise<void> {
  const { config, natsUrl, holder } = workerData as BackgroundWorkerData;
  lowerPriority(config.backgroundNice);
  const events: ObserverEvent[] = [];
  const observer: RouterObserver = {
    routed: (written, skipped) => void events.push(['routed', written, skipped]),
    failed: (kind) => void events.push(['failed', kind]),
  };
  // Findings made here (router, checkpointer, this thread's registry and keyring watches) go to the gateway thread's ledger.
  integrity.onFinding((f) => void events.push(['finding', f]));
  integrity.useLogger(logger);
  const bus = await connectNats({
    servers: natsUrl,
    name: `liaison-background-${config.brokerId}`,
    publishTimeoutMs: config.publishTimeoutMs,
    logger,
    auth: config,
  });
  let registry: RegistryStore | undefined;
  let keyringStore: KeyringStore | undefined;
  let roles: BackgroundRoles | undefined;
  const tid = currentThreadId();
  const status = (): BackgroundStatus => ({
    routerLeading: roles?.router?.leading ?? false,
    routed: roles?.router?.routed ?? 0,
    checkpointer: roles?.checkpointer?.status ?? null,
    threads: { background: tid, sealing: roles?.router?.sealingThreadId },
  });
  try {
    // The gateway seeded the registry and put the keyring in KV before starting this thread: here they are only read and followed.
    registry = await RegistryStore.open(bus, createRegistryValidator(), logger, config.streamReplicas);
    await registry.watch();
    const { keyring } = await loadOrCreateBrokerKeys(config.dataDir, config.brokerId);
    const kek = loadOrCreateKek(config.keyEncryptionKeyFile ?? defaultKekPath(config.dataDir), false);
    keyringStore = await KeyringStore.open({
      bus,
      keyring,
      kek,
      dataDir: config.dataDir,
      logger,
      replicas: config.streamReplicas,
      persist: false,
    });
    await keyringStore.watch();
    const reg = registry;
    roles = await createBackgroundRoles({
      config,
      bus,
      keyring,
      registry: () => reg.snapshot,
      logger,
      holder,
      observer,
    });
  } catch (e) {
    keyringStore?.close();
    registry?.close();
    await bus.close();
    throw e;
  }
  const r = roles;
  r.start();
  let last = '';
  const timer = setInterval(() => {
    const s = status();
    const json = JSON.stringify(s);
    if (events.length === 0 && json === last) return;
    last = json;
    send({ type: 'status', status: s, events: events.splice(0) });
  }, STATUS_EVERY_MS);
  send({ type: 'ready', status: status() });

  port.on('message', (m: ToWorker) => {
    if (m.type !== 'close') return;
    void (async () => {
      if (m.role === 'checkpointer') {
        await r.checkpointer?.close();
      } else {
        await r.router?.close();
        await r.checkpointer?.close();
        clearInterval(timer);
        keyringStore.close();
        registry.close();
        await bus.close();
      }
      send({ type: 'status', status: status(), events: events.splice(0) });
      flushLogs();
      send({ type: 'closed', role: m.role });
    })().catch((e: unknown) => {
      flushLogs();
      send({ type: 'failed', message: (e as Error)?.message ?? String(e) });
    });
  });
}

main().catch((e: unknown) => {
  logger.error(
    { event: 'background-start-failed', err: { message: (e as Error)?.message } },
    'the background thread could not start',
  );
  flushLogs();
  send({ type: 'failed', message: (e as Error)?.message ?? String(e) });
});
