import { AckPolicy, DeliverPolicy, type JsMsg } from 'nats';
import type { Logger } from 'pino';
import type { BrokerKeyring } from '../../broker/keys/broker-keys.js';
import type { NatsBus } from '../../broker/nats/connection.js';
import { isNotFound } from '../../broker/nats/errors.js';
import { STREAMS } from '../../broker/nats/streams.js';
import type { RegistrySnapshot } from '../../broker/registry/model.js';
import { integrity, streamWhere } from '../../broker/core/integrity.js';
import { toInboxDelivery } from '../../broker/routing/inbox.js';
import { LeaderLoop } from '../../broker/leader/leader-loop.js';
import { openKvLease } from '../../broker/nats/kv-lease.js';
import { park, REDELIVER_SUBJECTS, WEBHOOK_HEADERS } from './deadletter.js';
import { checkWebhookUrl, postWebhook } from './post.js';
import { signWebhook, WEBHOOK_MEDIA_TYPE } from './sign.js';
import { sleep } from '../../broker/core/sleep.js';

export const WEBHOOK_LEASE_KEY = 'webhook';
export const REDELIVER_CONSUMER = 'webhook-redeliver';
export const webhookConsumer = (agency: string) => `webhook-${agency}`;

export interface WebhookDelivererOptions {
  bus: NatsBus;
  registry: () => RegistrySnapshot;
  keyring: BrokerKeyring;
  logger: Logger;
  holder: string;
  leaseTtlSeconds: number;
  replicas: number;
  timeoutMs: number;
  /** POST to non-public addresses too (address-policy.ts); off by default. */
  allowPrivateNetworks?: boolean;
  backoffBaseMs: number;
  backoffMaxMs: number;
  maxAttempts: number;
  /** How often the set of webhook agencies is compared with the registry (ms). */
  reconcileMs?: number;
}

const ns = (ms: number) => ms * 1_000_000;

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
    const ttlMs = o.leaseTtlSeconds * 1000;
    this.#leader = new LeaderLoop({ key: WEBHOOK_LEASE_KEY, holder: o.holder, ttlMs, logger: o.logger, open: () => openKvLease(o.bus, WEBHOOK_LEASE_KEY, o.holder, ttlMs, o.replicas) });
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
    spawn('', (s) => this.#worker(STREAMS.deadletter, REDELIVER_CONSUMER, REDELIVER_SUBJECTS, DeliverPolicy.All, s));
    while (!signal.aborted) {
      const want = new Set(
        this.o
          .registry()
          .agencies()
          .filter((a) => a.webhook?.url !== undefined && a.roles.includes('subscribe'))
          .map((a) => a.id),
      );
      for (const id of want) {
        if (!workers.has(id)) {
          this.o.logger.info({ event: 'webhook-worker-started', agency: id }, 'webhook delivery started');
          spawn(id, (s) => this.#worker(STREAMS.deliveries, webhookConsumer(id), `deliveries.${id}.*.*`, DeliverPolicy.New, s));
        }
      }
      for (const [id, w] of workers) {
        if (id !== '' && !want.has(id)) {
          w.abort.abort();
          workers.delete(id);
          this.o.logger.info({ event: 'webhook-worker-stopped', agency: id }, 'webhook delivery stopped (no webhook in the registry)');
        }
      }
      await sleep(this.o.reconcileMs ?? 1000, signal);
    }
    for (const w of workers.values()) w.abort.abort();
    await Promise.all([...workers.values()].map((w) => w.done));
  }

  async #ensureConsumer(stream: string, name: string, filter: string, deliver: DeliverPolicy): Promise<void> {
    const { jsm } = this.o.bus;
    try {
      await jsm.consumers.info(stream, name);
    } catch (e) {
      if (!isNotFound(e, 'consumer')) throw e;
      // DeliverPolicy.New for an agency's deliveries: a newly registered webhook starts from now; the backlog stays readable by pull.
      await jsm.consumers.add(stream, { durable_name: name, ack_policy: AckPolicy.Explicit, deliver_policy: deliver, filter_subject: filter, max_ack_pending: 1, ack_wait: ns(this.#ackWaitMs) });
    }
  }

  /** A consume loop that re-subscribes after a failure until `signal` aborts. */
  async #worker(stream: string, name: string, filter: string, deliver: DeliverPolicy, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.#ensureConsumer(stream, name, filter, deliver);
        const consumer = await this.o.bus.js.consumers.get(stream, name);
        const iter = await consumer.consume({ max_messages: 1, expires: 5000 });
        const stop = () => iter.stop();
        signal.addEventListener('abort', stop, { once: true });
        // An abort that came while the consumer was being set up has no listener to stop it.
        if (signal.aborted) stop();
        try {
          for await (const m of iter) {
            if (signal.aborted) break;
            await this.#handle(m, signal);
          }
        } finally {
          signal.removeEventListener('abort', stop);
        }
      } catch (e) {
        if (signal.aborted) break;
        this.o.logger.warn({ event: 'webhook-consume-failed', consumer: name, err: { message: (e as Error).message } }, 'webhook consume loop failed; retrying');
        await sleep(500, signal);
      }
    }
  }

  /** Try one delivery (or redelivery request) up to maxAttempts times; then park it. Acks either way, unless the lease is lost. */
  async #handle(m: JsMsg, signal: AbortSignal): Promise<void> {
    const { logger } = this.o;
    const redelivery = m.subject.startsWith('redeliver.');
    const agency = m.subject.split('.')[redelivery ? 2 : 1] as string;
    const cursor = redelivery ? Number(m.headers?.get(WEBHOOK_HEADERS.cursor) ?? 0) : m.seq;
    const at = { stream: redelivery ? STREAMS.deadletter : STREAMS.deliveries, seq: m.seq };
    // Not a delivery (junk: a finding is made): terminated, so it is neither retried forever nor blocks the ones behind it.
    const delivery = Number.isSafeInteger(cursor) && cursor > 0 ? toInboxDelivery(cursor, m.data, m.headers, undefined, at) : null;
    if (!delivery) {
      if (!(Number.isSafeInteger(cursor) && cursor > 0)) integrity.report(logger, 'deadletter', streamWhere(at.stream, at.seq), 'redelivery cursor malformed');
      m.term();
      return;
    }
    const body = await signWebhook(this.o.keyring.signing, { ...delivery, iss: this.o.keyring.brokerId, recipient: agency });
    const headers = {
      'content-type': WEBHOOK_MEDIA_TYPE,
      'idempotency-key': `${delivery.notice_id}:${agency}`,
      'liaison-notice-id': delivery.notice_id,
      'liaison-delivery-cursor': String(cursor),
    };
    // Keep the message ours while we try (and back off).
    const keep = setInterval(() => m.working(), Math.floor(this.#ackWaitMs / 3));
    let lastError = 'no attempt';
    let attempts = 0;
    try {
      for (attempts = 1; attempts <= this.o.maxAttempts; attempts++) {
        // Read the URL afresh each try: a corrected URL in the registry applies at once.
        const url = checkWebhookUrl(this.o.registry().agency(agency)?.webhook?.url);
        if (typeof url === 'string') {
          lastError = url;
        } else {
          const out = await postWebhook(url, body, headers, this.o.timeoutMs, { allowPrivateNetworks: this.o.allowPrivateNetworks ?? false });
          if (out.ok) {
            await m.ackAck();
            this.#posted++;
            logger.info({ event: 'webhook-delivered', agency, notice_id: delivery.notice_id, cursor, attempts, status: out.status, redelivery }, 'webhook delivered');
            return;
          }
          lastError = out.reason;
        }
        logger.warn({ event: 'webhook-attempt-failed', agency, notice_id: delivery.notice_id, cursor, attempt: attempts, reason: lastError }, 'webhook attempt failed');
        if (attempts < this.o.maxAttempts) await sleep(backoffMs(attempts, this.o.backoffBaseMs, this.o.backoffMaxMs), signal);
        // Lease lost: leave it unacked for the next holder.
        if (signal.aborted) return;
      }
      attempts = this.o.maxAttempts;
      const key = redelivery ? `r${m.seq}` : `${cursor}:${agency}`;
      const seq = await park(this.o.bus, { agency, key, data: m.data, headers: m.headers, cursor, attempts, lastError, at: new Date() });
      await m.ackAck();
      logger.error({ event: 'webhook-dead-lettered', agency, notice_id: delivery.notice_id, cursor, attempts, reason: lastError, deadletter_seq: seq }, 'webhook delivery parked in the dead-letter');
    } catch (e) {
      logger.warn({ event: 'webhook-handle-failed', agency, notice_id: delivery.notice_id, err: { message: (e as Error).message } }, 'webhook delivery failed; will be retried');
      m.nak(1000);
    } finally {
      clearInterval(keep);
    }
  }
}
