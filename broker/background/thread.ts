/**
 * The gateway's side of the background thread (worker.ts): starts it, mirrors
 * the status of its roles for /metrics and the tests, replays its router
 * metrics and writes its log lines to the gateway's own log destination.
 *
 * Why a thread: with fan-out and checkpointing on the event loop that serves
 * HTTP, every notice's routing (a JetStream consume, a log re-append, one
 * publish per recipient, an ack; the index and tiles of the checkpointer)
 * queued in front of other agencies' requests, and the p99 of ingest at half
 * the peak rate was 4-8 times that of a gateway without them (docs/benchmarks.md).
 * On its own thread, at a lower CPU priority, that work takes the cores only
 * when ingest leaves them free, and catches up in the gaps.
 *
 * An unexpected exit of the thread is logged and the thread is started again
 * (after 1 s, doubling up to 30 s while it keeps dying within a minute of its
 * start): its roles are leased, so no other instance
 * is blocked meanwhile, and nothing it had in hand is lost (the router's
 * notices are redelivered after the ack wait; the checkpointer resumes from
 * its last checkpoint).
 */
import { randomFill } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';
import { settlesWithin } from '../core/sleep.js';
import { integrity } from '../core/integrity.js';
import { OFF_PATH_WORKER_LIMITS } from '../core/heap-limits.js';
import type { CheckpointerStatus } from '../log/checkpointer.js';
import type { RouterObserver } from '../routing/router.js';
import type { BackgroundStatus, BackgroundWorkerData, FromWorker, ToWorker } from './protocol.js';
import type { RoleThreadIds } from '../metrics/thread-cpu.js';

/** What the gateway (and /metrics) reads of its router, wherever it runs. */
export interface RouterView {
  readonly leading: boolean;
  readonly routed: number;
}

/** What the gateway (and /metrics) reads of its checkpointer, wherever it runs; close() stops it alone. */
export interface CheckpointerView {
  readonly status: CheckpointerStatus;
  close(): Promise<void>;
}

export interface BackgroundThreadOptions {
  config: Config;
  natsUrl: string;
  holder: string;
  logger: Logger;
  observer: RouterObserver;
  /** How long start() waits for the thread to report ready. */
  startTimeoutMs?: number;
  /** The worker script (worker.ts by default; tests give one that fails on purpose). */
  workerUrl?: URL;
  /** How long close() waits for the roles to stop before it terminates the thread (CLOSE_WAIT_MS by default). */
  closeWaitMs?: number;
}

const RESTART_FIRST_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** A thread up this long before it died counts as stable: the next restart delay starts again from RESTART_FIRST_MS. */
const STABLE_AFTER_MS = 60_000;
/** How long close() waits for the roles to stop before it terminates the thread (below the gateway's own bound per component). */
const CLOSE_WAIT_MS = 8_000;
const workerUrl = () => new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
const idle: BackgroundStatus = { routerLeading: false, routed: 0, checkpointer: null, threads: {} };

export class BackgroundThread {
  readonly #o: BackgroundThreadOptions;
  /** Where the gateway's logger writes: the thread's lines go there unchanged. */
  readonly #logDestination: { write(line: string): unknown };
  #worker: Worker | undefined;
  #status: BackgroundStatus = idle;
  /** Routed by earlier incarnations of the thread (a restarted thread counts from 0). */
  #routedBefore = 0;
  #closing = false;
  #restartMs = RESTART_FIRST_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  #waiting = new Map<'checkpointer' | 'all', () => void>();
  readonly router: RouterView | null;
  readonly checkpointer: CheckpointerView | null;

  private constructor(o: BackgroundThreadOptions) {
    this.#o = o;
    this.#logDestination = (o.logger as unknown as Record<symbol, { write(line: string): unknown }>)[
      pino.symbols.streamSym
    ]!;
    // The views' getters have a `this` of their own (the view object).
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.router = o.config.router
      ? {
          get leading() {
            return self.#status.routerLeading;
          },
          get routed() {
            return self.#routedBefore + self.#status.routed;
          },
        }
      : null;
    this.checkpointer = o.config.checkpointer
      ? {
          get status() {
            return {
              ...(self.#status.checkpointer ?? { leader: false, treeSize: 0, checkpointSize: 0, halted: null }),
            };
          },
          close: () => self.#closeRole('checkpointer'),
        }
      : null;
  }

  /** The thread ids (Linux) of the background thread and its sealing worker while they run. */
  get threadIds(): RoleThreadIds {
    return { ...this.#status.threads };
  }

  /** Start the thread; resolves once its roles have started, rejects if it cannot start. */
  static async start(o: BackgroundThreadOptions): Promise<BackgroundThread> {
    // libuv's thread pool is made by whichever thread first uses it, and new threads inherit their maker's priority:
    // make it here, at the gateway's priority, before the background thread (lower priority) can be the first.
    await new Promise<void>((resolve, reject) => randomFill(new Uint8Array(1), (e) => (e ? reject(e) : resolve())));
    const t = new BackgroundThread(o);
    await t.#spawn();
    return t;
  }

  #spawn(): Promise<void> {
    const data: BackgroundWorkerData = { config: this.#o.config, natsUrl: this.#o.natsUrl, holder: this.#o.holder };
    const w = new Worker(this.#o.workerUrl ?? workerUrl(), {
      workerData: data,
      resourceLimits: OFF_PATH_WORKER_LIMITS,
    });
    this.#worker = w;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      let startedAt = 0;
      const timer = setTimeout(() => {
        if (ready) return;
        reject(new Error(`the background thread did not start within ${this.#o.startTimeoutMs ?? 30_000} ms`));
        void w.terminate();
      }, this.#o.startTimeoutMs ?? 30_000);
      w.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'log':
            for (const line of m.lines) this.#logDestination.write(line);
            return;
          case 'ready':
            ready = true;
            clearTimeout(timer);
            this.#status = m.status;
            startedAt = Date.now();
            return resolve();
          case 'status':
            this.#status = m.status;
            for (const e of m.events) {
              if (e[0] === 'routed') this.#o.observer.routed(e[1], e[2]);
              else if (e[0] === 'finding') integrity.add(e[1]);
              else this.#o.observer.failed(e[1]);
            }
            return;
          case 'closed':
            this.#waiting.get(m.role)?.();
            this.#waiting.delete(m.role);
            return;
          case 'failed':
            if (!ready) {
              clearTimeout(timer);
              reject(new Error(`the background thread could not start: ${m.message}`));
            } else {
              this.#o.logger.error(
                { event: 'background-close-failed', err: { message: m.message } },
                'the background thread failed while stopping',
              );
            }
            void w.terminate();
            return;
        }
      });
      w.on('error', (e) =>
        this.#o.logger.error(
          { event: 'background-thread-error', err: { message: e.message } },
          'the background thread threw',
        ),
      );
      w.on('exit', (code) => {
        clearTimeout(timer);
        if (this.#worker !== w) return;
        this.#worker = undefined;
        this.#routedBefore += this.#status.routed;
        this.#status = idle;
        for (const done of this.#waiting.values()) done();
        this.#waiting.clear();
        if (!ready) return reject(new Error(`the background thread exited (${code}) before it started`));
        if (this.#closing) return;
        // A thread that ran for a while starts again quickly; one that keeps dying soon after its start, ever more slowly.
        if (Date.now() - startedAt >= STABLE_AFTER_MS) this.#restartMs = RESTART_FIRST_MS;
        this.#o.logger.error(
          { event: 'background-thread-exited', code, restart_in_ms: this.#restartMs },
          'the background thread (router, checkpointer) stopped; starting it again',
        );
        this.#restartTimer = setTimeout(() => {
          this.#spawn().catch((e: Error) =>
            this.#o.logger.error(
              { event: 'background-restart-failed', err: { message: e.message } },
              'the background thread could not be started again',
            ),
          );
        }, this.#restartMs);
        this.#restartMs = Math.min(RESTART_MAX_MS, this.#restartMs * 2);
      });
    });
  }

  /** Ask the thread to stop a role (or all, then exit); resolves when it has, or when the thread is gone. */
  #closeRole(role: 'checkpointer' | 'all'): Promise<void> {
    const w = this.#worker;
    if (!w) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const prev = this.#waiting.get(role);
      this.#waiting.set(role, () => {
        prev?.();
        resolve();
      });
      w.postMessage({ type: 'close', role } satisfies ToWorker);
    });
  }

  /**
   * Stop the roles (each releases its lease) and the thread. Bounded: a thread whose roles do not stop within
   * CLOSE_WAIT_MS (NATS away, a lease release that cannot reach it) is terminated, so that it cannot hold the process
   * open; its leases then lapse after their TTL and the notices it had in hand are redelivered after the ack wait.
   */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#restartTimer);
    const w = this.#worker;
    if (!w) return;
    const waitMs = this.#o.closeWaitMs ?? CLOSE_WAIT_MS;
    if (!(await settlesWithin(this.#closeRole('all'), waitMs))) {
      this.#o.logger.warn(
        { event: 'background-close-timeout', wait_ms: waitMs },
        'the background thread did not stop its roles in time; terminating it',
      );
    }
    await w.terminate();
  }
}
