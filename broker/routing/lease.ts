import type { Logger } from 'pino';
import type { NatsBus } from '../nats/connection.js';
import { openLease, type Lease as SharedLease } from '../nats/lease.js';
import { sleep } from '../core/sleep.js';

export interface LeaseOptions {
  bus: NatsBus;
  /** Key in the bucket, e.g. `router`. */
  key: string;
  /** Unique id of this holder (gateway instance). */
  holder: string;
  /** TTL of the bucket if this process creates it; an existing bucket's TTL is used as it is. */
  ttlSeconds: number;
  replicas: number;
  logger: Logger;
}


/**
 * Work under a leader lease (broker/nats/lease.ts: KV bucket `leases`, acquire
 * with create, renew with update(key, value, revision), the bucket's TTL as the
 * lease TTL). Renews every TTL/3; stops the work at the first failed renewal,
 * or once no renewal has succeeded for 2/3 of the TTL (NATS away), which is
 * before the lease can lapse on the server and another holder take it.
 *
 * `run(work)` loops until `close()`: while it holds the lease it runs `work`
 * with a signal that aborts the moment the lease is lost.
 */
export class Lease {
  #closed = new AbortController();
  #held = false;
  #loop: Promise<void> | undefined;

  constructor(private readonly opts: LeaseOptions) {}

  get held(): boolean {
    return this.#held;
  }

  start(work: (signal: AbortSignal) => Promise<void>): void {
    this.#loop ??= this.#run(work);
  }

  async #run(work: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const { bus, key, holder, logger } = this.opts;
    let lease: SharedLease | undefined;
    const period = () => Math.max(100, Math.floor((lease?.ttlMs ?? this.opts.ttlSeconds * 1000) / 3));
    while (!this.#closed.signal.aborted) {
      try {
        lease ??= await openLease(bus, key, holder, this.opts.ttlSeconds * 1000, this.opts.replicas);
        if (!(await lease.acquire())) {
          await sleep(period(), this.#closed.signal);
          continue;
        }
      } catch (e) {
        logger.debug({ event: 'lease-acquire-failed', key, reason: (e as Error).message }, 'lease not acquired');
        await sleep(period(), this.#closed.signal);
        continue;
      }
      this.#held = true;
      logger.info({ event: 'lease-acquired', key, holder }, 'lease acquired');
      const lost = new AbortController();
      const onClose = () => lost.abort();
      this.#closed.signal.addEventListener('abort', onClose, { once: true });
      // close() may have come while acquiring: its abort event has already fired.
      if (this.#closed.signal.aborted) lost.abort();
      let lastRenewed = Date.now();
      const held = lease;
      const renewer = setInterval(() => {
        // Give up locally before the lease can lapse on the server and another holder take it.
        if (Date.now() - lastRenewed > (2 * held.ttlMs) / 3) lost.abort();
        if (lost.signal.aborted) return;
        held.renew().then(
          (ok) => (ok ? (lastRenewed = Date.now()) : lost.abort()),
          () => lost.abort(),
        );
      }, period());
      try {
        await work(lost.signal);
      } catch (e) {
        logger.error({ event: 'lease-work-failed', key, err: { message: (e as Error).message } }, 'work under lease failed');
      } finally {
        clearInterval(renewer);
        this.#closed.signal.removeEventListener('abort', onClose);
        this.#held = false;
      }
      // Step down: release at once (only if still ours) instead of making the next holder wait for the TTL.
      await held.release().catch(() => undefined);
      if (!this.#closed.signal.aborted) {
        logger.warn({ event: 'lease-lost', key, holder }, 'lease lost');
        await sleep(period(), this.#closed.signal);
      }
    }
  }

  /** Stop working, release the lease if held, and wait for the loop to end. */
  async close(): Promise<void> {
    this.#closed.abort();
    await this.#loop;
  }
}
