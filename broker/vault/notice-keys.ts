/**
 * Where each stored notice's own data key lives: stream NOTICE_KEYS, subject
 * `notice-keys.<notice-id>`, one record per notice, the key wrapped under a
 * broker storage key. The notice's ciphertext is elsewhere (NOTICES, ACKS...):
 * destroying this one record (crypto-shredding) leaves every copy of the
 * ciphertext, in any stream, replica or backup taken afterwards, unreadable.
 *
 * An erasure first writes a tombstone naming its event, so that readers can
 * tell "erased by event E" from "missing", then overwrites every earlier
 * record of the subject in place (JetStream's secure delete).
 */
import { LiaisonError } from '../core/errors.js';
import { subjectToken } from '../core/ids.js';
import type { StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';

/** A notice's data key, wrapped (RFC 3394 AES key wrap) under the storage key `kek`. */
export interface WrappedNoticeKey {
  v: 1;
  /** The kid of the broker storage key it is wrapped under. */
  kek: string;
  /** base64url of the wrapped data key. */
  wrapped: string;
}

/** What is left of a notice's key after an erasure. */
export interface ErasedNoticeKey {
  v: 1;
  erased_by: string;
  erased_at: string;
}

export type NoticeKeyRecord = WrappedNoticeKey | ErasedNoticeKey;

/** A record in NOTICE_KEYS that is not one: the broker cannot use it (502), and never treats it as a key. */
const badRecord = (noticeId: string, seq: number, why: string) =>
  new LiaisonError('log-state-invalid', { detail: `${STREAMS.noticeKeys}#${seq} (notice ${noticeId}): ${why}` });

export const noticeKeySubject = (noticeId: string) => `notice-keys.${subjectToken(noticeId, 'notice id')}`;
export const isErased = (r: NoticeKeyRecord): r is ErasedNoticeKey => 'erased_by' in r;

const enc = new TextEncoder();
const B64URL = /^[A-Za-z0-9_-]+$/;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** Parse a stored record strictly: anything else in the stream is an integrity finding, never a key. */
export function parseNoticeKeyRecord(noticeId: string, seq: number, data: Uint8Array): NoticeKeyRecord {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    throw badRecord(noticeId, seq, 'not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRecord(noticeId, seq, 'not an object');
  const r = v as Record<string, unknown>;
  const keys = Object.keys(r).sort().join(',');
  if (r.v === 1 && keys === 'kek,v,wrapped' && isText(r.kek, 64) && isText(r.wrapped, 128) && B64URL.test(r.wrapped))
    return { v: 1, kek: r.kek, wrapped: r.wrapped };
  if (
    r.v === 1 &&
    keys === 'erased_at,erased_by,v' &&
    isText(r.erased_by, 128) &&
    isText(r.erased_at, 40) &&
    !Number.isNaN(Date.parse(r.erased_at))
  )
    return { v: 1, erased_by: r.erased_by, erased_at: r.erased_at };
  throw badRecord(noticeId, seq, 'not a notice key record');
}

/** The notice's key record, newest first; null when the notice has none (never stored, or from before sealing). */
export async function readNoticeKey(bus: StorePort, noticeId: string): Promise<NoticeKeyRecord | null> {
  const m = await bus.lastMessage(STREAMS.noticeKeys, noticeKeySubject(noticeId), `${STREAMS.noticeKeys} read`);
  return m ? parseNoticeKeyRecord(noticeId, m.seq, m.data) : null;
}

/**
 * Store a notice's wrapped key, once: the first record of its subject wins
 * (create-only), so a retry or a second gateway racing on the same notice
 * gets the key already stored, which is the one to seal with.
 */
export async function storeNoticeKey(
  bus: StorePort,
  noticeId: string,
  key: WrappedNoticeKey,
): Promise<{ stored: NoticeKeyRecord; created: boolean }> {
  const subject = noticeKeySubject(noticeId);
  try {
    const ack = await bus.publish(subject, enc.encode(JSON.stringify(key)), {
      msgID: `key:${noticeId}`,
      expectLastSubjectSequence: 0,
    });
    if (!ack.duplicate) return { stored: key, created: true };
    const held = await readNoticeKey(bus, noticeId);
    if (!held) throw new LiaisonError('unavailable', { detail: `${STREAMS.noticeKeys}: ${noticeId} acked, not found` });
    return { stored: held, created: false };
  } catch (e) {
    // Lost the create-only race (or a retry): the record that is there is the notice's key.
    const held = await readNoticeKey(bus, noticeId);
    if (!held) throw e;
    return { stored: held, created: false };
  }
}

/**
 * Crypto-shred a notice: write the tombstone, then overwrite every earlier
 * record of its subject. Idempotent: a repeat (or a retry after a crash
 * between the two steps) finishes the overwrite and keeps the first
 * tombstone. Returns the tombstone that stands.
 */
export async function destroyNoticeKey(
  bus: StorePort,
  noticeId: string,
  erasure: { event_id: string; erased_at: string },
): Promise<ErasedNoticeKey> {
  const subject = noticeKeySubject(noticeId);
  const last = await bus.lastMessage(STREAMS.noticeKeys, subject, `${STREAMS.noticeKeys} read`);
  let tombstone: ErasedNoticeKey;
  let tombstoneSeq: number;
  const held = last ? parseNoticeKeyRecord(noticeId, last.seq, last.data) : null;
  if (last && held && isErased(held)) {
    tombstone = held;
    tombstoneSeq = last.seq;
  } else {
    tombstone = { v: 1, erased_by: erasure.event_id, erased_at: erasure.erased_at };
    const ack = await bus.publish(subject, enc.encode(JSON.stringify(tombstone)), {
      msgID: `erased:${noticeId}`,
      expectLastSubjectSequence: last?.seq ?? 0,
    });
    tombstoneSeq = ack.seq;
  }
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(STREAMS.noticeKeys, seq, subject, `${STREAMS.noticeKeys} scan`);
    if (!m || m.seq >= tombstoneSeq) break;
    await bus.eraseMessage(STREAMS.noticeKeys, m.seq, `${STREAMS.noticeKeys} erase`);
    seq = m.seq + 1;
  }
  return tombstone;
}
