import type { Logger } from 'pino';
import type {
  AgencyDirectory,
  DeadLetterSink,
  DeliveryMessage,
  DeliveryQueue,
  DeliverySigner,
  DeliverySource,
} from '../transport/contract.js';
import type { Lease } from '../../broker/leader/lease.js';
import { LeaderLoop } from '../../broker/leader/leader-loop.js';
import { checkWebhookUrl, postWebhook } from './post.js';
import { signWebhook, WEBHOOK_MEDIA_TYPE } from './sign.js';
import { sleep } from '../../broker/core/sleep.js';

export const WEBHOOK_LEASE_KEY = 'webhook';
export const REDELIVER_CONSUMER = 'webhook-redeliver';
export const webhookConsumer = (agency: string) => `webhook-${agency}`;

export interface WebhookDelivererOptions {
  /** Opens the lease `webhook`: one instance delivers at a time. */
  lease: () => Promise<Lease>;
  /** The TTL asked for the lease, in ms. */
  leaseTtlMs: number;
  deliveries: DeliverySource;
  deadLetters: DeadLetterSink;
  /** The webhook URL and roles of each agency, live from the registry. */
  agencies: AgencyDirectory;
  /** The broker's id and current signing key. */
  signer: () => DeliverySigner;
  logger: Logger;
  holder: string;
  timeoutMs: number;
  /** POST to non-public addresses too (address-policy.ts); off by default. */
  allowPrivateNetworks?: boolean;
  backoffBaseMs: number;
  backoffMaxMs: number;
  maxAttempts: number;
  /** How often the set of webhook agencies is compared with the registry (ms). */
  reconcileMs?: number;
}

/**
 * Delay before try `attempt + 1` after `attempt` failures: exponential
 * (base · 2^(attempt-1), capped at max) with "equal jitter" – half fixed, half
 * random – so receivers that failed together do not retry together.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(d / 2 + random() * (d / 2));
}

/**
 * Webhook delivery. One gateway at a time (lease `webhook` in KV `leases`)
 * POSTs the deliveries of every agency whose registry record has
 * `webhook.url`: one durable pull consumer per such agency
 * (`webhook-<agency>` on `deliveries.<agency>.*.*`, AckExplicit, one in flight,
 * so each agency gets its deliveries in order and a failing receiver holds up
 * only itself). A delivery is tried up to `maxAttempts` times with exponential
 * backoff and jitter, then parked in DEADLETTER and acked. An operator's
 * redelivery request (`redeliver.webhook.<agency>`) goes through the same
 * tries. At-least-once: a receiver de-duplicates on `Idempotency-Key`.
 */
export class WebhookDeliverer {
  readonly #leader: LeaderLoop;
  #posted = 0;

  constructor(private readonly o: WebhookDelivererOptions) {
    this.#leader = new LeaderLoop({
      key: WEBHOOK_LEASE_KEY,
      holder: o.holder,
      ttlMs: o.leaseTtlMs,
      logger: o.logger,
      open: o.lease,
    });
  }

  get leading(): boolean {
    return this.#leader.held;
  }

  /** Webhook POSTs answered with a 2xx by this instance. */
  get posted(): number {
    return this.#posted;
  }

  start(): void {
    this.#leader.start(({ signal }) => this.#lead(signal));
  }

  async close(): Promise<void> {
    await this.#leader.close();
  }

  /** ack_wait of the consumers: a whole round of tries fits in it, renewed with working() while trying anyway. */
  get #ackWaitMs(): number {
    return Math.max(30_000, 2 * this.o.timeoutMs + 5_000);
  }

  /** Under the lease: keep one worker per webhook agency, plus the redelivery worker. */
  async #lead(signal: AbortSignal): Promise<void> {
    const workers = new Map<string, { abort: AbortController; done: Promise<void> }>();
    const spawn = (name: string, run: (s: AbortSignal) => Promise<void>) => {
      const abort = new AbortController();
      const onLost = () => abort.abort();
      signal.addEventListener('abort', onLost, { once: true });
      const done = run(abort.signal).finally(() => signal.removeEventListener('abort', onLost));
      workers.set(name, { abort, done });
    };
    spawn('', (s) => this.#worker({ consumer: REDELIVER_CONSUMER, ackWaitMs: this.#ackWaitMs, redeliveries: true }, s));
    while (!signal.aborted) {
      const want = new Set(
        this.o.agencies
          .agencies()
          .filter((a) => a.webhookUrl !== undefined && a.subscribes)
          .map((a) => a.id),
      );
      for (const id of want) {
        if (!workers.has(id)) {
          this.o.logger.info({ event: 'webhook-worker-started', agency: id }, 'webhook delivery started');
          spawn(id, (s) => this.#worker({ consumer: webhookConsumer(id), ackWaitMs: this.#ackWaitMs, agency: id }, s));
        }
      }
      for (const [id, w] of workers) {
        if (id !== '' && !want.has(id)) {
          w.abort.abort();
          workers.delete(id);
          this.o.logger.info(
            { event: 'webhook-worker-stopped', agency: id },
            'webhook delivery stopped (no webhook in the registry)',
          );
        }
      }
      await sleep(this.o.reconcileMs ?? 1000, signal);
    }
    for (const w of workers.values()) w.abort.abort();
    await Promise.all([...workers.values()].map((w) => w.done));
  }

  /** Deliver one queue until `signal` aborts (the source subscribes again after a failure). */
  #worker(queue: DeliveryQueue, signal: AbortSignal): Promise<void> {
    return this.o.deliveries.consume(
      queue,
      signal,
      (m) => this.#handle(m, signal),
      (e) =>
        this.o.logger.warn(
          { event: 'webhook-consume-failed', consumer: queue.consumer, err: { message: e.message } },
          'webhook consume loop failed; retrying',
        ),
    );
  }

  /** Try one delivery (or redelivery request) up to maxAttempts times; then park it. Acks either way, unless the lease is lost. */
  async #handle(m: DeliveryMessage, signal: AbortSignal): Promise<void> {
    const { logger } = this.o;
    const { agency, cursor, redelivery, delivery } = m;
    if (!delivery) {
      m.term();
      return;
    }
    const signer = this.o.signer();
    const body = await signWebhook(signer.key, { ...delivery, iss: signer.issuer, recipient: agency });
    const headers = {
      'content-type': WEBHOOK_MEDIA_TYPE,
      // An erasure record is another message than the delivery it replaces: a receiver that de-duplicates must keep both.
      'idempotency-key': delivery.erased ? `${delivery.notice_id}:${agency}:erased` : `${delivery.notice_id}:${agency}`,
      'liaison-notice-id': delivery.notice_id,
      'liaison-delivery-cursor': String(cursor),
    };
    // Keep the message ours while we try (and back off).
    const keep = setInterval(() => m.working(), Math.floor(this.#ackWaitMs / 3));
    let lastError = 'no attempt';
    let attempts: number;
    try {
      for (attempts = 1; attempts <= this.o.maxAttempts; attempts++) {
        // Read the URL afresh each try: a corrected URL in the registry applies at once.
        const url = checkWebhookUrl(this.o.agencies.agency(agency)?.webhookUrl);
        if (typeof url === 'string') {
          lastError = url;
        } else {
          const out = await postWebhook(url, body, headers, this.o.timeoutMs, {
            allowPrivateNetworks: this.o.allowPrivateNetworks ?? false,
          });
          if (out.ok) {
            await m.ack();
            this.#posted++;
            logger.info(
              {
                event: 'webhook-delivered',
                agency,
                notice_id: delivery.notice_id,
                cursor,
                attempts,
                status: out.status,
                redelivery,
              },
              'webhook delivered',
            );
            return;
          }
          lastError = out.reason;
        }
        logger.warn(
          {
            event: 'webhook-attempt-failed',
            agency,
            notice_id: delivery.notice_id,
            cursor,
            attempt: attempts,
            reason: lastError,
          },
          'webhook attempt failed',
        );
        if (attempts < this.o.maxAttempts)
          await sleep(backoffMs(attempts, this.o.backoffBaseMs, this.o.backoffMaxMs), signal);
        // Lease lost: leave it unacked for the next holder.
        if (signal.aborted) return;
      }
      attempts = this.o.maxAttempts;
      const seq = await this.o.deadLetters.park(m, { attempts, lastError, at: new Date() });
      await m.ack();
      logger.error(
        {
          event: 'webhook-dead-lettered',
          agency,
          notice_id: delivery.notice_id,
          cursor,
          attempts,
          reason: lastError,
          deadletter_seq: seq,
        },
        'webhook delivery parked in the dead-letter',
      );
    } catch (e) {
      logger.warn(
        {
          event: 'webhook-handle-failed',
          agency,
          notice_id: delivery.notice_id,
          err: { message: (e as Error).message },
        },
        'webhook delivery failed; will be retried',
      );
      m.nak(1000);
    } finally {
      clearInterval(keep);
    }
  }
}
