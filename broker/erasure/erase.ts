/**
 * Putting a logged `notice-erased` event in force (KeyAdmin.eraseNotice calls
 * it after the event is stored and logged, and again on every retry):
 *
 *  1. crypto-shred: the notice's key in NOTICE_KEYS becomes a tombstone naming
 *     the event, every earlier record of it overwritten (broker/vault/);
 *  2. NOTICES: the notice's message, securely erased;
 *  3. DELIVERIES: every recipient's copy, securely erased;
 *  4. DEADLETTER: its parked webhook deliveries and redelivery requests, erased;
 *  5. each agency it was delivered to gets a broker-signed erasure record in
 *     its inbox (broker/admin/erasure-record.ts), once.
 *
 * Everything a step needs is read from what the erasure never removes (the
 * notice's log entry, KV `delivered`), and each step skips what is done, so a
 * crash anywhere is finished by the next call. Step 5 comes last and is found
 * by the scan of step 3: an agency never gets two records. KV `notice-ids`
 * is left alone: the erased notice's id stays taken.
 *
 * No log line names more than ids; the reason is never logged.
 */
import type { Logger } from 'pino';
import { ERASURE_HEADER, signErasureRecord } from '../admin/erasure-record.js';
import type { EraseContent } from '../admin/key-admin.js';
import type { RegistryEvent } from '../admin/registry-event.js';
import { LiaisonError } from '../core/errors.js';
import type { StoredMessage, StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import type { BrokerSigningKey } from '../keys/broker-keys.js';
import { ENTRY_HEADER } from '../log/append.js';
import { decodeEntry, type NoticeLogEntry } from '../log/entry.js';
import { findNoticeEntry } from '../log/notice-lookup.js';
import { noticeSubject } from '../log/notice-writer.js';
import { deadletterSubject, redeliverSubject } from '../routing/deadletter.js';
import { deliveredTo } from '../routing/delivered.js';
import { DELIVERY_HEADERS, deliverySubject } from '../routing/plan.js';
import { destroyNoticeKey } from '../vault/notice-keys.js';

export interface ContentEraserOptions {
  bus: StorePort;
  /** The broker's current signing key (it signs the recipients' erasure records). */
  signer: () => BrokerSigningKey;
  logger: Logger;
}

/** What one erasure removed (counts), for the log line and the tests. */
export interface ErasureSteps {
  notices: number;
  deliveries: number;
  deadLetters: number;
  records: number;
}

export const erasureRecordMsgId = (noticeId: string, agency: string) => `erased:${noticeId}:${agency}`;

/** Every message on `subject` in `stream` for which `mine` holds, oldest first. */
async function* scan(
  bus: StorePort,
  stream: string,
  subject: string,
  mine: (m: StoredMessage) => boolean,
): AsyncGenerator<StoredMessage> {
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(stream, seq, subject, `${stream} erasure scan`);
    if (!m) return;
    if (mine(m)) yield m;
    seq = m.seq + 1;
  }
}

/** The NOTICES message of the notice: by its Msg-Id, or (a message stored without one) by its log entry header. */
function isNoticeMessage(m: StoredMessage, noticeId: string): boolean {
  if (m.header?.get('Nats-Msg-Id') === noticeId) return true;
  const b64 = m.header?.get(ENTRY_HEADER);
  if (!b64) return false;
  try {
    return (decodeEntry(Buffer.from(b64, 'base64url')) as Partial<NoticeLogEntry>).notice_id === noticeId;
  } catch {
    return false;
  }
}

export async function eraseNoticeContent(
  o: ContentEraserOptions,
  event: RegistryEvent,
  logIndex: number,
): Promise<ErasureSteps> {
  const { bus } = o;
  if (!('notice' in event.subject)) throw new Error('not a notice erasure event');
  const noticeId = event.subject.notice;
  const entry = await findNoticeEntry(bus, noticeId);
  if (!entry) throw new LiaisonError('notice-unknown', { detail: `erasure ${event.id}: no log entry for ${noticeId}` });
  const steps: ErasureSteps = { notices: 0, deliveries: 0, deadLetters: 0, records: 0 };

  // 1. Crypto-shredding first: from here on no copy anywhere (replica, backup) can be opened.
  await destroyNoticeKey(bus, noticeId, { event_id: event.id, erased_at: event.at });

  // 2. The stored notice.
  for await (const m of scan(bus, STREAMS.notices, noticeSubject(entry), (m) => isNoticeMessage(m, noticeId)))
    if (await bus.eraseMessage(STREAMS.notices, m.seq, `${STREAMS.notices} erase`)) steps.notices++;

  // 3. Every recipient's copy; the records already given (a retry) are found on the way.
  const delivered = (await deliveredTo(bus, noticeId)) ?? [];
  const agencies = [...new Set([...delivered, ...entry.recipients.filter((r) => /^[a-z0-9-]+$/.test(r))])].sort();
  const recorded = new Set<string>();
  for (const agency of agencies) {
    const subject = deliverySubject(agency, entry.operation, entry.origin.country);
    const ofNotice = (m: StoredMessage) => m.header?.get(DELIVERY_HEADERS.noticeId) === noticeId;
    for await (const m of scan(bus, STREAMS.deliveries, subject, ofNotice)) {
      if (m.header?.get(ERASURE_HEADER)) recorded.add(agency);
      else if (await bus.eraseMessage(STREAMS.deliveries, m.seq, `${STREAMS.deliveries} erase`)) steps.deliveries++;
    }
    // 4. Its webhook dead letters, and any request to send one again.
    for (const dl of [deadletterSubject(agency), redeliverSubject(agency)])
      for await (const m of scan(bus, STREAMS.deadletter, dl, ofNotice))
        if (await bus.eraseMessage(STREAMS.deadletter, m.seq, `${STREAMS.deadletter} erase`)) steps.deadLetters++;
  }

  // 5. The erasure record, in the inbox of each agency that got the notice (never one that did not).
  const signer = o.signer();
  for (const agency of delivered) {
    if (recorded.has(agency)) continue;
    const record = { notice_id: noticeId, event_id: event.id, erased_at: event.at, log_index: logIndex };
    await bus.publish(
      deliverySubject(agency, entry.operation, entry.origin.country),
      new TextEncoder().encode(await signErasureRecord(signer, record)),
      {
        msgID: erasureRecordMsgId(noticeId, agency),
        headers: {
          [ERASURE_HEADER]: event.id,
          [DELIVERY_HEADERS.noticeId]: noticeId,
          [DELIVERY_HEADERS.operation]: entry.operation,
          [DELIVERY_HEADERS.originCountry]: entry.origin.country,
          [DELIVERY_HEADERS.origin]: entry.origin.agency,
          [DELIVERY_HEADERS.type]: entry.type,
          [DELIVERY_HEADERS.tlp]: entry.tlp,
          [DELIVERY_HEADERS.logIndex]: String(logIndex),
          [DELIVERY_HEADERS.receivedAt]: event.at,
        },
      },
    );
    steps.records++;
  }
  o.logger.info(
    { event: 'notice-erased', notice_id: noticeId, event_id: event.id, log_index: logIndex, ...steps },
    'notice erased: key destroyed, content purged',
  );
  return steps;
}

/** eraseNoticeContent as the KeyAdmin option. */
export const contentEraser =
  (o: ContentEraserOptions): EraseContent =>
  async (event, logIndex) => {
    await eraseNoticeContent(o, event, logIndex);
  };
