/**
 * KV bucket `delivered`: for each routed notice (key = notice id), the
 * agencies the router stored a delivery for (JSON array, sorted), written
 * after those deliveries are in DELIVERIES, also when there are none. No TTL:
 * DELIVERIES ages out after 30 days, this record stays.
 *
 * It is what "received the notice" means when the notice is withdrawn: a
 * notice's log entry names whom ingest meant it for, but the router may have
 * skipped some of them (left the operation meanwhile, no encryption key), and
 * a withdrawal must never reach an agency that did not get the original
 * (broker/ingest/withdrawal-policy.ts).
 */
import { openBucketOnce } from '../core/bucket-once.js';
import { LiaisonError } from '../core/errors.js';
import { isSlug } from '../core/ids.js';
import { sleep } from '../core/sleep.js';
import type { KvBucket, StorePort } from '../core/store-port.js';
import type { NoticeLogEntry } from '../log/entry.js';
import { duplicateWindowMs } from '../log/notice-writer.js';

export const DELIVERED_BUCKET = 'delivered';

/**
 * Open (create) the bucket; the router calls it with the stream replicas. A record's first write leaves with the
 * routed notices' publishes (one socket write), not in a request of its own.
 */
export function openDelivered(bus: StorePort, replicas = 1): Promise<KvBucket> {
  return openBucketOnce(bus, DELIVERED_BUCKET, { history: 1, replicas, putIfNewWithPublishes: true });
}

const encode = (agencies: Iterable<string>) => new TextEncoder().encode(JSON.stringify([...new Set(agencies)].sort()));

function decode(value: Uint8Array, noticeId: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(value));
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || !v.every((a) => typeof a === 'string' && isSlug(a))) {
    throw new LiaisonError('unavailable', {
      detail: `${DELIVERED_BUCKET}: the record of ${noticeId} is not a list of agency ids`,
    });
  }
  return v;
}

/** Conditional writes lost in a row before recordDelivered gives up (the notice is then routed again). */
const RECORD_ATTEMPTS = 8;

/**
 * Record the agencies a notice was delivered to, added to whatever an earlier
 * attempt recorded: what it stored stays stored even if this attempt's plan is
 * smaller. Several routers may route one notice at once (a redelivery after
 * the ack wait while the first is still busy), so the record is never simply
 * overwritten: the first write is create-only, any later one a merge written
 * only over the revision it read (compare-and-set), read again when another
 * router wrote in between. The usual case, a notice routed once, costs one write.
 */
export async function recordDelivered(
  bus: StorePort,
  replicas: number,
  noticeId: string,
  agencies: readonly string[],
): Promise<void> {
  const kv = await openDelivered(bus, replicas);
  const value = encode(agencies);
  if (await kv.putIfNew(noticeId, value)) return;
  for (let attempt = 1; attempt <= RECORD_ATTEMPTS; attempt++) {
    const held = await kv.get(noticeId);
    if (!held) {
      if (await kv.putIfNew(noticeId, value)) return;
      continue;
    }
    const had = held.operation === 'PUT' ? decode(held.value, noticeId) : [];
    const all = encode([...had, ...agencies]);
    if (held.operation === 'PUT' && Buffer.from(all).equals(held.value)) return; // nothing to add
    if ((await kv.update(noticeId, all, held.revision)) !== undefined) return;
  }
  throw new LiaisonError('unavailable', {
    detail: `${DELIVERED_BUCKET}: the record of ${noticeId} kept changing under ${RECORD_ATTEMPTS} writes`,
  });
}

/** The agencies a notice was delivered to; undefined when no router has recorded it (not routed yet, or routed before the record existed). */
export async function deliveredTo(bus: StorePort, noticeId: string): Promise<string[] | undefined> {
  // Bound, never made: when no router has ever recorded anything, the key reads as not there.
  const kv = await bus.bucket(DELIVERED_BUCKET, { bindOnly: true });
  const held = await kv.get(noticeId, `${DELIVERED_BUCKET} get`);
  return held && held.operation === 'PUT' ? decode(held.value, noticeId) : undefined;
}

/**
 * Whether the router recorded a delivery of the notice to `agency`. The record is written just after the deliveries
 * are stored, so an agency that read its delivery at once may ask before it exists: wait for it, at most `waitMs`.
 */
export async function deliveredToAgency(
  bus: StorePort,
  noticeId: string,
  agency: string,
  waitMs: number,
): Promise<boolean> {
  const until = Date.now() + waitMs;
  for (;;) {
    if ((await deliveredTo(bus, noticeId))?.includes(agency)) return true;
    if (Date.now() >= until) return false;
    await sleep(50);
  }
}

/** How long a withdrawal waits for its original to be routed (normally milliseconds after ingest) before answering 503. */
export const ROUTING_WAIT_MS = 3000;

/**
 * Whom the router delivered `original` to, for its withdrawal. A withdrawal sent
 * right after its original may find no record yet: it waits for the routing,
 * at most `waitMs`, then is 503 `unavailable` (retry). Undefined only when no
 * record can come any more: the original is older than NOTICES' duplicate
 * window, past which no router routes it (it was routed before the broker
 * kept the record, or never).
 */
export async function deliveredOriginal(
  bus: StorePort,
  original: Pick<NoticeLogEntry, 'notice_id' | 'received_at'>,
  waitMs = ROUTING_WAIT_MS,
): Promise<string[] | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const delivered = await deliveredTo(bus, original.notice_id);
    if (delivered !== undefined) return delivered;
    if (Date.now() - Date.parse(original.received_at) > (await duplicateWindowMs(bus))) return undefined;
    if (Date.now() >= deadline) {
      throw new LiaisonError('unavailable', {
        detail: `the superseded notice ${original.notice_id} is not routed yet`,
        publicDetail: 'the superseded notice is not delivered yet; retry shortly',
      });
    }
    await sleep(100);
  }
}
