import { createHash } from 'node:crypto';
import { LiaisonError } from '../core/errors.js';
import { subjectToken } from '../core/ids.js';
import { decodeEntry, encodeEntry, type NoticeLogEntry } from '../log/entry.js';
import type { NatsBus } from '../nats/connection.js';
import { STREAMS } from '../nats/streams.js';

export const sha256Hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

export interface StoreInput {
  signed: Uint8Array;
  /** The entry to write if this notice is new; received_at is the broker's clock. */
  entry: NoticeLogEntry;
}

export interface StoreResult {
  /** 0-based position in the log (LOG stream sequence - 1): the Merkle leaf index. */
  logIndex: number;
  /** The entry as stored: on a retry, the original one (original received_at). */
  entry: NoticeLogEntry;
  /** True when nothing new was written (an idempotent retry). */
  duplicate: boolean;
}

export const noticeSubject = (e: Pick<NoticeLogEntry, 'operation' | 'origin' | 'type'>) =>
  `notices.${subjectToken(e.operation, 'operation')}.${subjectToken(e.origin.country, 'origin.country')}.${subjectToken(e.type, 'type')}`;

const bytesEqual = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

/**
 * Step 7: store the signed notice in NOTICES and its commitment in LOG, the
 * notice id as Msg-Id on both, and wait for both JetStream acks. A retry inside
 * the duplicate window writes nothing new and returns the original entry; the
 * same id with other bytes is a conflict. If a crash left the notice without
 * its entry, the retry writes the entry.
 */
export const ENTRY_HEADER = 'Liaison-Log-Entry';

export async function storeAndLog(bus: NatsBus, input: StoreInput): Promise<StoreResult> {
  const { signed } = input;
  const msgID = input.entry.notice_id;
  let entryBytes = encodeEntry(input.entry);
  // The NOTICES message carries its own log entry, so that whoever finds a notice
  // without its entry (a retry, the router after a crash) writes exactly that entry.
  const noticeAck = await bus.publish(noticeSubject(input.entry), signed, {
    msgID,
    headers: { 'Liaison-Notice-Id': msgID, 'Liaison-Format': input.entry.format, [ENTRY_HEADER]: Buffer.from(entryBytes).toString('base64url') },
  });
  if (noticeAck.duplicate) {
    const stored = await bus.getMessage(STREAMS.notices, noticeAck.seq);
    if (!stored) throw new LiaisonError('unavailable', { detail: `NOTICES#${noticeAck.seq} vanished after a duplicate ack` });
    if (!bytesEqual(stored.data, signed)) throw new LiaisonError('duplicate-conflict');
    const header = stored.header?.get(ENTRY_HEADER);
    if (header) entryBytes = Buffer.from(header, 'base64url');
  }
  const logAck = await logEntryBytes(bus, msgID, entryBytes);
  let entry = decodeEntry(entryBytes) as NoticeLogEntry;
  if (logAck.duplicate) {
    const stored = await bus.getMessage(STREAMS.log, logAck.seq);
    if (!stored) throw new LiaisonError('unavailable', { detail: `LOG#${logAck.seq} vanished after a duplicate ack` });
    entry = decodeEntry(stored.data) as NoticeLogEntry;
    if (entry.sha256 !== input.entry.sha256) throw new LiaisonError('duplicate-conflict');
  }
  return { logIndex: logAck.seq - 1, entry, duplicate: noticeAck.duplicate && logAck.duplicate };
}

/** Append entry bytes to LOG, de-duplicated by msgID: writing the same entry twice is a no-op that returns the first position. */
export async function logEntryBytes(bus: NatsBus, msgID: string, bytes: Uint8Array) {
  const kind = (decodeEntry(bytes) as { kind: string }).kind;
  return bus.publish(`log.${subjectToken(kind, 'log kind')}`, bytes, { msgID, headers: { 'Liaison-Msg-Id': msgID } });
}
