import type { ConsumerPort, MessageBatch, PendingMessage } from '../core/consumer-port.js';
import { LiaisonError, unavailable } from '../core/errors.js';
import type { InboxDelivery } from '../core/inbox-delivery.js';
import { isCountry, isSlug, isUuid, subjectToken } from '../core/ids.js';
import { integrity, streamWhere } from '../core/integrity.js';
import type { MessageHeaders, StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { storedDeliveryFormat } from '../formats/registry.js';
import { openInboxConsumer, type InboxConsumer } from './inbox-consumer.js';
import { DELIVERY_HEADERS } from './plan.js';
import { ERASURE_HEADER } from '../admin/erasure-record.js';

export type { InboxDelivery };

export interface InboxFilter {
  agency: string;
  operation?: string | undefined;
  /** Origin country (ISO 3166-1 alpha-2). */
  origin?: string | undefined;
  type?: string | undefined;
}

const bad = (what: string) => new LiaisonError('bad-request', { publicDetail: what });

/** Check the query filters before any of them becomes a subject token. */
export function checkFilter(f: InboxFilter): InboxFilter {
  if (f.operation !== undefined && !isSlug(f.operation))
    throw bad('operation must be an operation id (a lower-case slug)');
  if (f.origin !== undefined && !isCountry(f.origin)) throw bad('origin must be an ISO 3166-1 alpha-2 country code');
  if (f.type !== undefined && !isSlug(f.type)) throw bad('type must be a notice type name');
  return f;
}

/** Only the caller's own subjects: deliveries.<agency>.<operation|*>.<origin-country|*>. */
export function inboxSubject(f: InboxFilter): string {
  checkFilter(f);
  return `deliveries.${subjectToken(f.agency, 'agency')}.${f.operation === undefined ? '*' : subjectToken(f.operation, 'operation')}.${f.origin === undefined ? '*' : subjectToken(f.origin, 'origin')}`;
}

const TLPS = new Set(['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED']);

/** Why a stored message is not a delivery the router (or an erasure) could have written (short, never content); null when it is one. */
export function deliveryDefect(data: Uint8Array, headers: MessageHeaders | undefined): string | null {
  if (!headers) return 'no delivery headers';
  const get = (k: string) => headers.get(k) ?? '';
  if (!isUuid(get(DELIVERY_HEADERS.noticeId))) return 'no notice id header';
  if (get(ERASURE_HEADER) !== '') return erasureDefect(data, get);
  if (
    !isSlug(get(DELIVERY_HEADERS.operation)) ||
    !isCountry(get(DELIVERY_HEADERS.originCountry)) ||
    !isSlug(get(DELIVERY_HEADERS.origin)) ||
    !isSlug(get(DELIVERY_HEADERS.type))
  )
    return 'routing headers malformed';
  if (
    !TLPS.has(get(DELIVERY_HEADERS.tlp)) ||
    !/^\d{1,15}$/.test(get(DELIVERY_HEADERS.logIndex)) ||
    get(DELIVERY_HEADERS.receivedAt) === ''
  )
    return 'delivery headers malformed';
  if (data.length === 0) return 'empty body';
  // The body's shape is its format's (broker/formats/registry.ts); a format nobody registered is never served as the default.
  const format = storedDeliveryFormat(get(DELIVERY_HEADERS.deliveryFormat));
  if (!format) return 'delivery format not registered';
  return format.inboxDelivery.defect(data);
}

/** An erasure record (broker/erasure/): its labels, and a compact JWS in the body; the recipient verifies the signature. */
function erasureDefect(data: Uint8Array, get: (k: string) => string): string | null {
  if (!isUuid(get(ERASURE_HEADER))) return 'erasure event id malformed';
  if (
    !isSlug(get(DELIVERY_HEADERS.operation)) ||
    !isCountry(get(DELIVERY_HEADERS.originCountry)) ||
    !isSlug(get(DELIVERY_HEADERS.origin)) ||
    !isSlug(get(DELIVERY_HEADERS.type)) ||
    !TLPS.has(get(DELIVERY_HEADERS.tlp)) ||
    !/^\d{1,15}$/.test(get(DELIVERY_HEADERS.logIndex)) ||
    Number.isNaN(Date.parse(get(DELIVERY_HEADERS.receivedAt)))
  )
    return 'erasure headers malformed';
  if (data.length > 4096 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(new TextDecoder().decode(data)))
    return 'erasure record is not a compact JWS';
  return null;
}

/**
 * A stored delivery as the inbox shows it; null when it does not match the type
 * filter, or when it is not a delivery at all (junk: an integrity finding, where
 * = `stream#seq`, default DELIVERIES and the cursor). A reader skips a null and
 * serves the others.
 */
export function toInboxDelivery(
  seq: number,
  data: Uint8Array,
  headers: MessageHeaders | undefined,
  type?: string,
  at: { stream: string; seq: number } = { stream: STREAMS.deliveries, seq },
): InboxDelivery | null {
  const defect = deliveryDefect(data, headers);
  if (defect !== null) {
    integrity.report(
      undefined,
      at.stream === STREAMS.deadletter ? 'deadletter' : 'deliveries',
      streamWhere(at.stream, at.seq),
      defect,
    );
    return null;
  }
  const get = (k: string) => headers?.get(k) ?? '';
  const t = get(DELIVERY_HEADERS.type);
  if (type !== undefined && t !== type) return null;
  const labels = {
    cursor: seq,
    notice_id: get(DELIVERY_HEADERS.noticeId),
    operation: get(DELIVERY_HEADERS.operation),
    origin: { country: get(DELIVERY_HEADERS.originCountry), agency: get(DELIVERY_HEADERS.origin) },
    type: t,
    tlp: get(DELIVERY_HEADERS.tlp),
    log_index: Number(get(DELIVERY_HEADERS.logIndex)),
    received_at: get(DELIVERY_HEADERS.receivedAt),
  };
  // The one place an erased notice reaches a recipient: pull, SSE and webhooks all read deliveries through here.
  if (get(ERASURE_HEADER) !== '')
    return {
      ...labels,
      erased: {
        event_id: get(ERASURE_HEADER),
        erased_at: get(DELIVERY_HEADERS.receivedAt),
        record: new TextDecoder().decode(data),
      },
    };
  return {
    ...labels,
    [storedDeliveryFormat(get(DELIVERY_HEADERS.deliveryFormat))!.inboxDelivery.field]: new TextDecoder().decode(data),
  };
}

/**
 * One page of an agency's inbox: deliveries with stream sequence > `after`,
 * matching the filters, at most `limit`. `next` is the cursor to pass next time
 * (the last sequence examined, so filtered-out deliveries are not re-read).
 */
export async function readInbox(
  bus: StorePort & ConsumerPort,
  f: InboxFilter,
  after: number,
  limit: number,
): Promise<{ deliveries: InboxDelivery[]; next: number }> {
  const subject = inboxSubject(f);
  // One cheap lookup first: with nothing new, answer at once instead of waiting out a fetch.
  const first = await bus.nextMessage(STREAMS.deliveries, after + 1, subject, 'inbox lookup');
  if (!first) return { deliveries: [], next: after };
  const deliveries: InboxDelivery[] = [];
  let next = after;
  let read: InboxConsumer | undefined;
  try {
    read = await openInboxConsumer(bus, subject, first.seq);
    while (deliveries.length < limit) {
      const iter = await read.fetch({ maxMessages: Math.min(256, limit - deliveries.length), expiresMs: 2000 });
      let pending = -1;
      let got = 0;
      for await (const m of iter) {
        got++;
        next = m.seq;
        const d = toInboxDelivery(m.seq, m.data, m.headers, f.type);
        if (d) deliveries.push(d);
        pending = m.info.pending;
        if (pending === 0 || deliveries.length >= limit) {
          iter.stop();
          break;
        }
      }
      if (pending === 0 || got === 0) break;
    }
  } catch (e) {
    throw unavailable(e, 'inbox read');
  } finally {
    await read?.close();
  }
  return { deliveries, next };
}

/**
 * Follow an agency's inbox live from `after`: an ephemeral consumer
 * (inbox-consumer.ts) read in small batches, deleted when the stream ends. The
 * next batch is pulled only when the caller has taken the previous one, so a
 * slow reader holds at most `batch` deliveries in memory. Ends when `signal`
 * aborts.
 */
export async function* followInbox(
  bus: ConsumerPort,
  f: InboxFilter,
  after: number,
  signal: AbortSignal,
  batch = 8,
): AsyncGenerator<InboxDelivery> {
  const subject = inboxSubject(f);
  let read: InboxConsumer;
  try {
    read = await openInboxConsumer(bus, subject, after + 1);
  } catch (e) {
    throw unavailable(e, 'inbox follow');
  }
  let current: MessageBatch<PendingMessage> | undefined;
  const stop = () => current?.stop();
  signal.addEventListener('abort', stop, { once: true });
  try {
    while (!signal.aborted) {
      current = await read.fetch({ maxMessages: batch, expiresMs: 5000 });
      if (signal.aborted) current.stop();
      for await (const m of current) {
        if (signal.aborted) break;
        const d = toInboxDelivery(m.seq, m.data, m.headers, f.type);
        if (d) yield d;
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
    current?.stop();
    await read.close();
  }
}
