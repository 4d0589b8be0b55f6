/**
 * Retention: a notice is kept `retention_days` after it was received (its
 * operation's, else the network default, config retentionDays; 0: kept) and
 * is due for review `review_days` after (likewise, config reviewDays).
 *
 * The retention eraser runs under its own lease (`retention`, KV `leases`) on
 * the one leader loop and, every sweep interval, walks LOG's notice entries
 * from a cursor kept in KV `retention` (the first LOG sequence not settled
 * yet), erasing each notice past its retention with the one erasure of the
 * admin API (KeyAdmin.eraseNotice: a `notice-erased` event, actor the broker,
 * reason "retention"). The cursor moves past what is settled (erased, or kept
 * forever); it stops at the first notice not due yet, and the walk ends where
 * no later notice can be due under the shortest retention in force (the log
 * is in order of receipt), so a sweep never rescans the whole log.
 */
import type { Logger } from 'pino';
import type { BrokerActor, RecordedEvent } from '../admin/key-admin.js';
import { isUuid } from '../core/ids.js';
import type { StorePort } from '../core/store-port.js';
import { sleep } from '../core/sleep.js';
import { STREAMS } from '../core/stream-names.js';
import { LeaderLoop } from '../leader/leader-loop.js';
import type { LeasePort } from '../leader/lease.js';
import { decodeEntry, type NoticeLogEntry } from '../log/entry.js';
import type { Operation, RegistrySnapshot } from '../registry/model.js';
import { isErased, readNoticeKey } from '../vault/notice-keys.js';

export const RETENTION_LEASE_KEY = 'retention';
export const RETENTION_BUCKET = 'retention';
const CURSOR_KEY = 'cursor';
const NOTICE_ENTRIES = 'log.notice';
const DAY_MS = 24 * 3600 * 1000;
export const RETENTION_REASON = 'retention';

/** Days a notice of `op` is kept (0: no automatic erasure). */
export const retentionDaysOf = (op: Pick<Operation, 'retention_days'> | undefined, networkDays: number): number =>
  op?.retention_days ?? networkDays;

/** Days after receipt a notice of `op` is due for review. */
export const reviewDaysOf = (op: Pick<Operation, 'review_days'> | undefined, networkDays: number): number =>
  op?.review_days ?? networkDays;

export interface RetentionOptions {
  bus: StorePort & LeasePort;
  /** The erasure of the admin API (KeyAdmin.eraseNotice). */
  erase: (actor: BrokerActor, noticeId: string, req: { reason: string }) => Promise<RecordedEvent>;
  /** The broker as the actor of its own erasures (its id, its current signing key). */
  actor: () => BrokerActor;
  registry: () => RegistrySnapshot;
  /** The network default (config retentionDays); 0: notices of operations without their own are kept. */
  retentionDays: number;
  sweepIntervalMs: number;
  holder: string;
  leaseTtlSeconds: number;
  replicas: number;
  logger: Logger;
  now?: () => Date;
}

function asNoticeEntry(bytes: Uint8Array): NoticeLogEntry | undefined {
  try {
    const e = decodeEntry(bytes) as Partial<NoticeLogEntry>;
    if (
      e.kind === 'notice' &&
      isUuid(e.notice_id) &&
      typeof e.operation === 'string' &&
      !Number.isNaN(Date.parse(String(e.received_at)))
    )
      return e as NoticeLogEntry;
  } catch {
    // not a notice entry: nothing to erase (the checkpointer and the audit report it)
  }
  return undefined;
}

export class RetentionEraser {
  readonly #leader: LeaderLoop;
  readonly #o: RetentionOptions;
  readonly #now: () => Date;

  constructor(o: RetentionOptions) {
    this.#o = o;
    this.#now = o.now ?? (() => new Date());
    const ttlMs = o.leaseTtlSeconds * 1000;
    this.#leader = new LeaderLoop({
      key: RETENTION_LEASE_KEY,
      holder: o.holder,
      ttlMs,
      logger: o.logger,
      open: () => o.bus.openLease(RETENTION_LEASE_KEY, o.holder, ttlMs, o.replicas),
    });
  }

  get leading(): boolean {
    return this.#leader.held;
  }

  start(): void {
    this.#leader.start(async ({ signal }) => {
      while (!signal.aborted) {
        try {
          await this.sweep(signal);
        } catch (e) {
          this.#o.logger.warn(
            { event: 'retention-sweep-failed', err: { message: (e as Error).message } },
            'retention sweep failed; it is tried again at the next interval',
          );
        }
        await sleep(this.#o.sweepIntervalMs, signal);
      }
    });
  }

  close(): Promise<void> {
    return this.#leader.close();
  }

  /** One walk from the cursor: erase what is past its retention, move the cursor past what is settled. */
  async sweep(signal?: AbortSignal): Promise<{ erased: number; cursor: number }> {
    const { bus, registry } = this.#o;
    const snapshot = registry();
    const days = (op: string) => retentionDaysOf(snapshot.operation(op), this.#o.retentionDays);
    const inForce = [this.#o.retentionDays, ...snapshot.operations().map((op) => op.retention_days ?? 0)].filter(
      (d) => d > 0,
    );
    const kv = await bus.bucket(RETENTION_BUCKET, { history: 1, replicas: this.#o.replicas });
    const held = await kv.get(CURSOR_KEY, `${RETENTION_BUCKET} cursor`);
    const start = held?.operation === 'PUT' ? Number(new TextDecoder().decode(held.value)) : 1;
    let cursor = Number.isSafeInteger(start) && start >= 1 ? start : 1;
    if (inForce.length === 0) return { erased: 0, cursor };
    const shortest = Math.min(...inForce);
    const now = this.#now().getTime();
    let settled = true;
    let erased = 0;
    for (let seq = cursor; !signal?.aborted;) {
      const m = await bus.nextMessage(STREAMS.log, seq, NOTICE_ENTRIES, 'retention walk');
      if (!m) break;
      const entry = asNoticeEntry(m.data);
      if (entry) {
        const received = Date.parse(entry.received_at);
        // In order of receipt: from here on, nothing can be due under the shortest retention in force.
        if (received + shortest * DAY_MS > now) break;
        const d = days(entry.operation);
        if (d > 0 && received + d * DAY_MS <= now) {
          const key = await readNoticeKey(bus, entry.notice_id);
          if (!key || !isErased(key)) {
            await this.#o.erase(this.#o.actor(), entry.notice_id, { reason: RETENTION_REASON });
            erased++;
          }
        } else if (d > 0) settled = false; // not due yet: the cursor waits here
      }
      seq = m.seq + 1;
      if (settled) cursor = seq;
    }
    if (held?.operation !== 'PUT' || cursor !== start)
      await kv.put(CURSOR_KEY, new TextEncoder().encode(String(cursor)), `${RETENTION_BUCKET} cursor`);
    if (erased > 0)
      this.#o.logger.info({ event: 'retention-erased', erased, cursor }, 'notices past their retention erased');
    return { erased, cursor };
  }
}

/** A notice due for review: received, in its operation, its review date passed. */
export interface ReviewDue {
  notice_id: string;
  operation: string;
  origin: { country: string; agency: string };
  type: string;
  log_index: number;
  received_at: string;
  review_at: string;
}

/**
 * The notices whose review date has passed and that are not erased, oldest
 * first, at most `limit`: LOG's notice entries from the start, up to where no
 * later one can be due under the shortest review interval in force.
 */
export async function reviewDue(
  bus: StorePort,
  snapshot: RegistrySnapshot,
  networkReviewDays: number,
  now: Date,
  limit: number,
): Promise<ReviewDue[]> {
  const shortest = Math.min(networkReviewDays, ...snapshot.operations().map((op) => op.review_days ?? Infinity));
  const out: ReviewDue[] = [];
  for (let seq = 1; out.length < limit;) {
    const m = await bus.nextMessage(STREAMS.log, seq, NOTICE_ENTRIES, 'review walk');
    if (!m) break;
    seq = m.seq + 1;
    const entry = asNoticeEntry(m.data);
    if (!entry) continue;
    const received = Date.parse(entry.received_at);
    if (received + shortest * DAY_MS > now.getTime()) break;
    const reviewAt = received + reviewDaysOf(snapshot.operation(entry.operation), networkReviewDays) * DAY_MS;
    if (reviewAt > now.getTime()) continue;
    const key = await readNoticeKey(bus, entry.notice_id);
    if (key && isErased(key)) continue;
    out.push({
      notice_id: entry.notice_id,
      operation: entry.operation,
      origin: entry.origin,
      type: entry.type,
      log_index: m.seq - 1,
      received_at: entry.received_at,
      review_at: new Date(reviewAt).toISOString(),
    });
  }
  return out;
}
