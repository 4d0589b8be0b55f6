/**
 * After a storage key rotation: every notice key record still wrapped under
 * an older storage key is re-wrapped under the current one. Per notice: a new
 * record on its subject (compare-and-set on the old record's sequence, so an
 * erasure or another re-wrapper in between wins), then the old record is
 * securely erased, as destroyNoticeKey does. Idempotent and resumable: a run
 * after a crash finds either the old record (re-wrapped again) or the new one
 * with the old still there (then only the erase is left). Tombstones stay.
 */
import type { StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { isErased, noticeKeySubject, parseNoticeKeyRecord } from './notice-keys.js';
import type { StorageKeyring } from './open.js';
import { unwrapDataKey, wrapDataKey } from './seal.js';

export interface RewrapResult {
  rewrapped: number;
  /** Earlier records of a subject (left by a crash between a re-wrap and its erase) erased now. */
  erased: number;
  /** Storage key ids still named by a record that could not be re-wrapped (junk, or a key this instance lacks). */
  stillUsed: Set<string>;
}

const enc = new TextEncoder();
const PREFIX = 'notice-keys.';

export async function rewrapNoticeKeys(bus: StorePort, keys: StorageKeyring): Promise<RewrapResult> {
  const current = keys.storageKey;
  const out: RewrapResult = { rewrapped: 0, erased: 0, stillUsed: new Set() };
  if (!current) return out;
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(STREAMS.noticeKeys, seq, `${PREFIX}>`, `${STREAMS.noticeKeys} scan`);
    if (!m) break;
    seq = m.seq + 1;
    const noticeId = m.subject.slice(PREFIX.length);
    let record;
    try {
      record = parseNoticeKeyRecord(noticeId, m.seq, m.data);
    } catch {
      continue; // junk is not a key: readers report it; nothing to re-wrap
    }
    if (isErased(record) || record.kek === current.kid) continue;
    const subject = noticeKeySubject(noticeId);
    const last = await bus.lastMessage(STREAMS.noticeKeys, subject, `${STREAMS.noticeKeys} read`);
    if (last && last.seq !== m.seq) {
      // Superseded on its subject (re-wrapped, or erased) but still there: finish the erase.
      if (await bus.eraseMessage(STREAMS.noticeKeys, m.seq, `${STREAMS.noticeKeys} erase`)) out.erased++;
      continue;
    }
    const old = keys.storageKeyById(record.kek);
    if (!old) {
      out.stillUsed.add(record.kek);
      continue;
    }
    let dataKey: Uint8Array;
    try {
      dataKey = unwrapDataKey(record, old);
    } catch {
      out.stillUsed.add(record.kek);
      continue;
    }
    try {
      await bus.publish(subject, enc.encode(JSON.stringify(wrapDataKey(dataKey, current))), {
        msgID: `rewrap:${noticeId}:${m.seq}`,
        expectLastSubjectSequence: m.seq,
      });
    } catch (e) {
      // Another writer got there first (an erasure, or another re-wrapper): the next run sees what it left.
      const now = await bus.lastMessage(STREAMS.noticeKeys, subject, `${STREAMS.noticeKeys} read`);
      if (now?.seq === m.seq) throw e;
      out.stillUsed.add(record.kek);
      continue;
    }
    await bus.eraseMessage(STREAMS.noticeKeys, m.seq, `${STREAMS.noticeKeys} erase`);
    out.rewrapped++;
  }
  return out;
}
