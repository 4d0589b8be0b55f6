/**
 * The one leader loop of the broker: the router, the checkpointer and the
 * webhook deliverer each run their work under one (each with its own lease).
 * It knows nothing of where the lease is kept (a `Lease`, lease.ts; in NATS
 * KV: broker/nats/kv-lease.ts).
 *
 *   acquire  open the lease (retried until it opens) and take it; not taken:
 *            try again every TTL/3
 *   lead     run the work with a term: a signal that aborts the moment the
 *            lease is lost or the loop closes, and renew() for a work that
 *            must know it still leads right before a write that only the
 *            leader may make
 *   renew    every TTL/3; a failed renewal, or none that succeeded for 2/3 of
 *            the TTL (NATS away), ends the term, before the lease can lapse on
 *            the server and another holder take it: never two leaders
 *   step down when the work ends for any reason: release the lease at once
 *            (only if still ours) rather than make the next holder wait out
 *            the TTL, wait TTL/3, and try again
 *   stop     close(): end the term, release, and wait for the loop to end
 */
import type { Logger } from 'pino';
import { sleep } from '../core/sleep.js';
import type { Lease } from './lease.js';

export interface LeaderTerm {
  /** Aborts when the lease is lost or the loop closes: stop leading at once. */
  readonly signal: AbortSignal;
  /** Renew the lease now (in turn with the periodic renewals). False: lost, and the term ends. */
  renew(): Promise<boolean>;
}

export type LeaderWork = (term: LeaderTerm) => Promise<void>;

export interface LeaderLoopOptions {
  /** The lease's name, for the log (e.g. `router`). */
  key: string;
  /** This instance's name in the lease, for the log. */
  holder: string;
  /** Opens the lease; retried every TTL/3 until it succeeds. */
  open: () => Promise<Lease>;
  /** The TTL asked for: the pace of the loop until the lease is open and tells its own. */
  ttlMs: number;
  logger: Logger;
}

export class LeaderLoop {
  readonly #closed = new AbortController();
  #held = false;
  #loop: Promise<void> | undefined;

  constructor(private readonly o: LeaderLoopOptions) {}

  /** Whether this instance leads right now. */
  get held(): boolean {
    return this.#held;
  }

  /** Start the loop (once); `work` runs each time the lease is taken. */
  start(work: LeaderWork): void {
    this.#loop ??= this.#run(work);
  }

  /** End the term, release the lease if held, and wait for the loop to end. */
  async close(): Promise<void> {
    this.#closed.abort();
    await this.#loop;
  }

  async #run(work: LeaderWork): Promise<void> {
    const { key, holder, logger } = this.o;
    const closed = this.#closed.signal;
    let lease: Lease | undefined;
    const period = () => Math.max(100, Math.floor((lease?.ttlMs ?? this.o.ttlMs) / 3));
    while (!closed.aborted) {
      try {
        lease ??= await this.o.open();
        if (!(await lease.acquire())) {
          await sleep(period(), closed);
          continue;
        }
      } catch (e) {
        logger.debug({ event: 'lease-acquire-failed', key, reason: (e as Error).message }, 'lease not acquired');
        await sleep(period(), closed);
        continue;
      }
      this.#held = true;
      logger.info({ event: 'lease-acquired', key, holder }, 'lease acquired');
      await this.#lead(lease, period(), work);
      this.#held = false;
      await lease.release().catch(() => undefined);
      if (!closed.aborted) {
        logger.warn({ event: 'lease-lost', key, holder }, 'lease lost');
        await sleep(period(), closed);
      }
    }
  }

  /** One term: `work` under `lease`, renewed every `periodMs`, until either ends. */
  async #lead(lease: Lease, periodMs: number, work: LeaderWork): Promise<void> {
    const closed = this.#closed.signal;
    const lost = new AbortController();
    const onClose = () => lost.abort();
    closed.addEventListener('abort', onClose, { once: true });
    // close() may have come while acquiring: its abort event has already fired.
    if (closed.aborted) lost.abort();
    let lastRenewed = Date.now();
    // One renewal at a time: two updates of the same revision would make the second look like a lost lease.
    let renewing: Promise<boolean> = Promise.resolve(true);
    let pending = 0;
    const renew = (): Promise<boolean> => {
      pending++;
      return (renewing = renewing.then(async () => {
        try {
          if (lost.signal.aborted) return false;
          if (await lease.renew()) {
            lastRenewed = Date.now();
            return true;
          }
        } catch {
          // NATS away: the lease is as good as lost.
        } finally {
          pending--;
        }
        lost.abort();
        return false;
      }));
    };
    const renewer = setInterval(() => {
      if (Date.now() - lastRenewed > (2 * lease.ttlMs) / 3) lost.abort();
      // A slow renewal is not joined by another from the timer: they would only queue up behind it.
      if (!lost.signal.aborted && pending === 0) void renew();
    }, periodMs);
    try {
      await work({ signal: lost.signal, renew });
    } catch (e) {
      this.o.logger.error(
        { event: 'lease-work-failed', key: this.o.key, err: { message: (e as Error).message } },
        'work under lease failed',
      );
    } finally {
      clearInterval(renewer);
      closed.removeEventListener('abort', onClose);
      lost.abort();
    }
  }
}
