import type { Logger } from 'pino';
import type { AckableMessage, ConsumerPort } from '../core/consumer-port.js';
import type { StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { isCountry, isSlug, isUuid } from '../core/ids.js';
import { isEnvelopeFormatName, unknownFormat } from '../formats/registry.js';
import { CodedError, type CodeOf } from '../core/errors.js';
import { integrity, streamWhere } from '../core/integrity.js';
import { sha256Hex } from '../core/sha256.js';
import { appendEntry, ENTRY_HEADER } from '../log/append.js';
import { ENTRY_SIGNATURE_HEADER } from '../log/entry-signature.js';
import { decodeEntry, type NoticeLogEntry } from '../log/entry.js';
import type { RegistrySnapshot } from '../registry/model.js';
import { createDeliverySealers, sealAll, type DeliverySealers } from './seal.js';
import { recordDelivered } from './delivered.js';
import { deliveryHeaders, planDeliveries } from './plan.js';
import { sleep } from '../core/sleep.js';
import { openStoredNotice, type StorageKeyring } from '../vault/open.js';

export const ROUTER_CONSUMER = 'router';

export interface RouterOptions {
  /** The message store: NOTICES consumed, LOG, DELIVERIES and KV `delivered` written. */
  bus: StorePort & ConsumerPort;
  registry: () => RegistrySnapshot;
  logger: Logger;
  ackWaitSeconds: number;
  /** LOG's duplicate window: an entry older than this can no longer be re-appended safely. */
  duplicateWindowSeconds: number;
  replicas: number;
  /** The broker's storage keys: NOTICES bodies are sealed (broker/vault/). */
  storageKeys: StorageKeyring;
  now?: () => Date;
  /** Counts for metrics (broker/metrics); told numbers only, never ids. */
  observer?: RouterObserver;
  /**
   * The sealer of each delivery format (createDeliverySealers, with the broker's OpenPGP key: injected by the
   * composition root); the router closes them. Default: the formats that need no broker key (JOSE); deliveries in a
   * format without a sealer are skipped.
   */
  sealers?: DeliverySealers;
}

export interface RouterObserver {
  /** One notice routed: `written` deliveries published to DELIVERIES, `skipped` recipients left out. */
  routed(written: number, skipped: number): void;
  /** A notice that cannot be routed (terminated) or a routing attempt that failed (retried). */
  failed(kind: 'unroutable' | 'retry'): void;
}

/** Notices one router has in hand at once. */
export const ROUTE_WINDOW = 32;
/** Routers the shared consumer is sized for: its max_ack_pending counts the notices in hand of all of them together. */
export const ROUTERS_SIZED_FOR = 8;
/** How long the router leaves a fresh notice's log entry to ingest before re-appending it itself. */
const INGEST_GRACE_MS = 50;
/** A re-append that wrote an entry for a notice received longer ago than this is a restoration after a crash (warned). */
const RESTORED_WARN_AFTER_SECONDS = 5;

/** Why a stored notice cannot be routed at all (never retried); `junk` when the message cannot be a notice. */
class Unroutable extends CodedError<CodeOf<'routing'>> {
  constructor(
    message: string,
    readonly junk = true,
    code: CodeOf<'routing'> = 'notice-unroutable',
  ) {
    super(code, message);
  }
}

/** The fields routing reads, of the right types: else the message is not a notice (a TypeError in planning would retry it forever). */
function isNoticeEntry(e: unknown): e is NoticeLogEntry {
  const x = e as Partial<NoticeLogEntry> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    x.kind === 'notice' &&
    isUuid(x.notice_id) &&
    Array.isArray(x.recipients) &&
    x.recipients.every((r) => typeof r === 'string') &&
    typeof x.operation === 'string' &&
    isSlug(x.operation) &&
    typeof x.origin === 'object' &&
    x.origin !== null &&
    typeof x.origin.country === 'string' &&
    isCountry(x.origin.country) &&
    typeof x.origin.agency === 'string' &&
    typeof x.type === 'string' &&
    typeof x.tlp === 'string' &&
    typeof x.received_at === 'string' &&
    typeof x.sha256 === 'string'
  );
}

/**
 * Lets concurrent tasks enter one stage in the order they took a ticket:
 * `turn()` (called in that order) waits for the previous ticket's release.
 * A release always comes (finally), so a failed notice never blocks the next.
 */
class Sequencer {
  #last: Promise<void> = Promise.resolve();
  ticket(): { turn: Promise<void>; release: () => void } {
    const turn = this.#last;
    let release!: () => void;
    this.#last = new Promise<void>((r) => (release = r));
    return { turn, release };
  }
}

/**
 * Step 9: fan-out. Every gateway with `router` on runs one, and all of them
 * pull from the one durable consumer `router` on NOTICES (AckExplicit): the
 * server hands each notice to one of them, so each routes a share and a dead
 * one only leaves its notices in hand to the ack wait. For each notice: re-append
 * its log entry (a no-op when present: same Msg-Id), write one encrypted
 * delivery per recipient (Msg-Id `<notice-id>:<agency>`), record whom it
 * delivered to (KV `delivered`, merged under a revision check: delivered.ts),
 * then ack. A crash anywhere before the ack, or an ack wait that runs out while
 * a slow router still works on the notice, makes another router (or this one)
 * do the same again, and Msg-Id de-duplication turns what was already written
 * into no-ops: nothing dropped, nothing twice.
 *
 * Up to ROUTE_WINDOW notices are in hand at once per router, so that one
 * notice's round trips to JetStream and to the sealing worker overlap the
 * next one's: with one in flight the router fell behind ingest under load
 * (bench). Within one router the stages that write (the log re-append, then the
 * deliveries) are entered in the order the notices were taken (Sequencer), on
 * one connection, so this router stores every agency's deliveries in NOTICES
 * order. Across routers there is no such order: two notices to one agency
 * taken by two routers may be stored in either order. Each delivery names its
 * log index (Liaison-Log-Index), the order a client sorts by when it needs one
 * (docs/routing.md).
 */
export class Router {
  /** One sealer per delivery format (JOSE's fans out on a worker thread, off the event loop that serves ingest). */
  readonly #sealers: DeliverySealers;
  readonly #logStage = new Sequencer();
  readonly #deliveryStage = new Sequencer();
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #consuming = false;
  #routed = 0;

  constructor(private readonly opts: RouterOptions) {
    this.#sealers = opts.sealers ?? createDeliverySealers({});
  }

  /**
   * Whether this instance is pulling from the consumer right now. The name is the one the leader metric reads
   * (liaison_leader{role="router"}): with no lease, every routing gateway reports 1.
   */
  get leading(): boolean {
    return this.#consuming;
  }

  /** The sealing worker's thread id while it runs (Linux), for the per-thread CPU metric. */
  get sealingThreadId(): number | undefined {
    return [...this.#sealers.values()].find((s) => s.threadId !== undefined)?.threadId;
  }

  /** Notices this instance has routed (and acked): its share. */
  get routed(): number {
    return this.#routed;
  }

  start(): void {
    this.#loop ??= this.#consume(this.#stop.signal);
  }

  /** Finish the notices in hand and stop; what was taken and not settled is redelivered to the other routers. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    await Promise.all([...this.#sealers.values()].map(async (s) => s.close?.()));
  }

  async #ensureConsumer(): Promise<void> {
    // Every router asks for the same settings, so none of them undoes another's. max_ack_pending is the consumer's,
    // shared by all its clients: room for ROUTERS_SIZED_FOR routers each with a full window (each takes at most its own).
    await this.opts.bus.ensureDurable(
      STREAMS.notices,
      {
        name: ROUTER_CONSUMER,
        deliver: 'all',
        ackWaitMs: this.opts.ackWaitSeconds * 1000,
        maxAckPending: ROUTE_WINDOW * ROUTERS_SIZED_FOR,
      },
      { reconfigure: true },
    );
  }

  /** The consume loop; re-subscribes after a failure until the router closes. */
  async #consume(signal: AbortSignal): Promise<void> {
    const { logger } = this.opts;
    while (!signal.aborted) {
      try {
        await this.#ensureConsumer();
        const iter = await this.opts.bus.consume(STREAMS.notices, ROUTER_CONSUMER, {
          maxMessages: ROUTE_WINDOW,
          expiresMs: 5000,
        });
        const stop = () => iter.stop();
        signal.addEventListener('abort', stop, { once: true });
        if (signal.aborted) stop();
        this.#consuming = true;
        const inHand = new Set<Promise<void>>();
        try {
          for await (const m of iter) {
            // Closing while waiting: leave the notice unacked for the other routers.
            if (signal.aborted) break;
            // Started in the order taken: each stage that writes is entered in this order (route()).
            const task = this.#handle(m)
              .catch((e: unknown) =>
                logger.error(
                  { event: 'router-handle-failed', err: { message: (e as Error)?.message } },
                  'router could not settle a notice; it is redelivered after the ack wait',
                ),
              )
              .finally(() => inHand.delete(task));
            inHand.add(task);
            if (inHand.size >= ROUTE_WINDOW) await Promise.race(inHand);
          }
        } finally {
          this.#consuming = false;
          signal.removeEventListener('abort', stop);
          // Finish what is in hand (or let it fail into a nak) before re-subscribing or closing.
          await Promise.allSettled([...inHand]);
        }
      } catch (e) {
        if (signal.aborted) break;
        logger.warn(
          { event: 'router-consume-failed', err: { message: (e as Error).message } },
          'router consume loop failed; retrying',
        );
        await sleep(500);
      }
    }
  }

  async #handle(m: AckableMessage): Promise<void> {
    const { logger } = this.opts;
    try {
      await this.route(m);
      // Not ackAck: a lost ack only redelivers the notice, and routing it again writes nothing new (same Msg-Ids).
      // A plain ack spares a round trip per notice, and the acks of notices settled together leave in one write.
      m.ack();
      this.#routed++;
    } catch (e) {
      this.opts.observer?.failed(e instanceof Unroutable ? 'unroutable' : 'retry');
      if (e instanceof Unroutable) {
        logger.error(
          { event: 'notice-unroutable', seq: m.seq, reason: e.message },
          'stored notice cannot be routed; terminated',
        );
        // What cannot be a notice at all (junk stored in NOTICES) is also an integrity finding; a notice merely too old to route is not.
        if (e.junk) integrity.report(logger, 'notices', streamWhere(STREAMS.notices, m.seq), e.message);
        m.term();
        return;
      }
      logger.warn(
        { event: 'route-failed', seq: m.seq, err: { message: (e as Error).message } },
        'routing failed; will retry',
      );
      m.nak(1000);
    }
  }

  /** Route one NOTICES message: log entry first, then the deliveries. Exposed for tests. */
  async route(
    m: Pick<AckableMessage, 'data' | 'headers' | 'seq' | 'info'>,
  ): Promise<{ logIndex: number; delivered: string[] }> {
    const { bus, logger } = this.opts;
    const b64 = m.headers?.get(ENTRY_HEADER);
    if (!b64) throw new Unroutable('the notice carries no log entry header');
    const entryBytes = Buffer.from(b64, 'base64url');
    let decoded: unknown;
    try {
      decoded = decodeEntry(entryBytes);
    } catch {
      throw new Unroutable('the log entry header is not JSON');
    }
    if (!isNoticeEntry(decoded)) throw new Unroutable('the log entry header is not a notice entry');
    const entry = decoded;
    if (!isEnvelopeFormatName(entry.format))
      throw new Unroutable(unknownFormat(entry.format).message, true, 'format-unknown');
    const signed = await this.#open(entry.notice_id, m.data);
    // The entry must commit to exactly these signed bytes, or it is not this notice's entry.
    if (entry.sha256 !== sha256Hex(signed)) throw new Unroutable('the log entry does not commit to the stored notice');
    const ageSeconds = (Date.now() - m.info.timestampNanos / 1e6) / 1000;
    if (ageSeconds > this.opts.duplicateWindowSeconds - 30) {
      // Outside the duplicate window, re-appending could log the entry twice and re-delivering could deliver twice.
      throw new Unroutable(
        `the notice is older than the duplicate window (${Math.round(ageSeconds)} s); route it by hand`,
        false,
      );
    }
    // Ingest writes the entry right after the NOTICES ack: give it a moment on a fresh notice, so the re-append below is
    // the usual no-op (else ingest's own append turns duplicate and costs it an extra read). Never waits on a backlog.
    const ageMs = Date.now() - m.info.timestampNanos / 1e6;
    // Tickets are taken now, in the order notices were taken; sealing runs concurrently, writing in ticket order.
    const logTicket = this.#logStage.ticket();
    const deliveryTicket = this.#deliveryStage.ticket();
    try {
      if (ageMs >= 0 && ageMs < INGEST_GRACE_MS) await sleep(INGEST_GRACE_MS - ageMs);
      const [registry, at] = [this.opts.registry(), (this.opts.now ?? (() => new Date()))()];
      const plan = planDeliveries(entry, registry, at);
      const sealing = sealAll(plan.deliveries, signed, entry, { registry, at, sealers: this.#sealers });
      // A failed seal is the caller's error once its turn comes; never an unhandled rejection meanwhile.
      sealing.catch(() => undefined);
      // "Nothing is delivered that is not in the log": the same Msg-Id as ingest, so this is a no-op unless a crash lost the entry.
      await logTicket.turn;
      // The signature ingest made and stored beside the entry, copied as is: the router never signs what it read from NOTICES.
      const logAckP = appendEntry(
        bus,
        entry.notice_id,
        entryBytes,
        m.headers?.get(ENTRY_SIGNATURE_HEADER) || undefined,
      );
      logTicket.release();
      const logAck = await logAckP;
      const logIndex = this.#logAppended(entry, logAck);
      for (const s of plan.skipped)
        logger.warn(
          { event: 'delivery-skipped', notice_id: entry.notice_id, agency: s.agency, reason: s.reason },
          'recipient skipped',
        );
      const sealed = await sealing;
      await deliveryTicket.turn;
      const delivered: string[] = [];
      const published = plan.deliveries.map((d, i) => {
        const s = sealed[i];
        if (!s)
          return void logger.warn(
            { event: 'delivery-skipped', notice_id: entry.notice_id, agency: d.agency, reason: 'no-encryption-key' },
            'recipient skipped: no usable encryption key of its delivery format',
          );
        delivered.push(d.agency);
        return bus.publish(d.subject, s.body, {
          msgID: d.msgId,
          headers: { ...deliveryHeaders(entry, logIndex, s.kid), ...s.headers },
        });
      });
      deliveryTicket.release();
      await Promise.all(published.filter((p) => p !== undefined));
      // Only once every delivery is stored: the record never names an agency that did not get the notice.
      await recordDelivered(bus, this.opts.replicas, entry.notice_id, delivered);
      this.opts.observer?.routed(plan.deliveries.length, plan.skipped.length);
      logger.info(
        { event: 'notice-routed', notice_id: entry.notice_id, log_index: logIndex, deliveries: delivered.length },
        'notice routed',
      );
      return { logIndex, delivered };
    } finally {
      logTicket.release();
      deliveryTicket.release();
    }
  }

  /** The signed notice in a NOTICES body (broker/vault/open.ts): an erased one is not routed, junk is a finding. */
  async #open(noticeId: string, data: Uint8Array): Promise<Uint8Array> {
    let opened;
    try {
      opened = await openStoredNotice(this.opts.bus, this.opts.storageKeys, noticeId, data);
    } catch (e) {
      if (e instanceof CodedError && e.code === 'log-state-invalid') throw new Unroutable(e.message);
      throw e;
    }
    if (opened.kind === 'erased') throw new Unroutable(`the notice was erased by event ${opened.erasedBy}`, false);
    return opened.signed;
  }

  /** The log position of a notice's entry; an entry the router had to write itself is reported. */
  #logAppended(entry: NoticeLogEntry, logAck: { seq: number; duplicate: boolean }): number {
    const { logger } = this.opts;
    if (!logAck.duplicate) {
      const restored = { event: 'log-entry-restored', notice_id: entry.notice_id, log_index: logAck.seq - 1 };
      // Only an old notice is surely a restoration after a crash; a fresh one may just be ingest being slower than the router.
      if (!((Date.now() - Date.parse(entry.received_at)) / 1000 < RESTORED_WARN_AFTER_SECONDS))
        logger.warn(restored, 'router wrote a missing log entry');
      else
        logger.info(
          restored,
          'router wrote the log entry of a fresh notice (ingest had not yet, or stopped before it)',
        );
    }
    return logAck.seq - 1;
  }
}
