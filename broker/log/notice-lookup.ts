/**
 * The log's reader by notice id: a notice's own log entry, for withdrawals
 * (broker/ingest/withdrawal-policy.ts) and for a retry past the duplicate
 * window (notice-writer.ts). LOG is never purged, so the entry is
 * the authority on who sent a notice and to whom it went.
 *
 * The `log-index` KV (notice id -> log index) is written by the checkpointer
 * before each checkpoint, so it lags the log by up to one checkpoint interval.
 * Sound lookup without waiting for it:
 *   1. read the size S of the newest checkpoint (0 when none): every notice
 *      entry at an index below S is in `log-index` by now;
 *   2. `log-index` hit -> read LOG at index + 1 and check it is that notice's entry;
 *   3. miss -> scan LOG from sequence S + 1 to the end, notice entries only
 *      (STREAM.MSG.GET with next_by_subj `log.notice`, one message per call).
 * S is read before the index, so an entry indexed between the two reads is
 * still found by the scan. The scan is bounded (`maxScan` notice entries): a
 * longer unindexed tail (checkpointer stopped or far behind) is `unavailable`
 * (503, retry later), never a wrong "unknown".
 */
import { LiaisonError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { KvBucket, StorePort } from '../core/store-port.js';
import { CHECKPOINT_SUBJECT, STREAMS } from '../core/stream-names.js';
import { INDEX_BUCKET, SIZE_HEADER } from './checkpoint-store.js';
import { decodeEntry, type NoticeLogEntry } from './entry.js';

export const MAX_TAIL_SCAN = 10_000;
const NOTICE_SUBJECT = 'log.notice';

const indexes = new WeakMap<StorePort, Promise<KvBucket | null>>();

/** The log-index bucket, bound (never created here); null when it does not exist. */
function indexBucket(bus: StorePort): Promise<KvBucket | null> {
  let kv = indexes.get(bus);
  if (!kv) {
    kv = bus.bucket(INDEX_BUCKET, { bindOnly: true }).catch(() => {
      indexes.delete(bus); // try again next time
      return null;
    });
    indexes.set(bus, kv);
  }
  return kv;
}

function asNoticeEntry(bytes: Uint8Array, noticeId: string): NoticeLogEntry | undefined {
  try {
    const e = decodeEntry(bytes) as Partial<NoticeLogEntry>;
    if (
      e.kind === 'notice' &&
      e.notice_id === noticeId &&
      Array.isArray(e.recipients) &&
      typeof e.origin?.agency === 'string'
    )
      return e as NoticeLogEntry;
  } catch {
    // a malformed entry is not the one we look for
  }
  return undefined;
}

async function checkpointSize(bus: StorePort): Promise<number> {
  const sm = await bus.lastMessage(STREAMS.checkpoints, CHECKPOINT_SUBJECT, 'last checkpoint');
  const n = Number(sm?.header?.get(SIZE_HEADER));
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

async function indexOf(bus: StorePort, noticeId: string): Promise<number | undefined> {
  const kv = await indexBucket(bus);
  if (!kv) return undefined;
  const e = await kv.get(noticeId);
  if (!e || e.operation !== 'PUT') return undefined;
  const n = Number(new TextDecoder().decode(e.value));
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The notice's own log entry, or undefined when the log holds none. */
export async function findNoticeEntry(
  bus: StorePort,
  noticeId: string,
  maxScan = MAX_TAIL_SCAN,
): Promise<NoticeLogEntry | undefined> {
  return (await findNoticeLogged(bus, noticeId, maxScan))?.entry;
}

/** The notice's own log entry and its log index (the first entry for that id), or undefined when the log holds none. */
export async function findNoticeLogged(
  bus: StorePort,
  noticeId: string,
  maxScan = MAX_TAIL_SCAN,
): Promise<{ entry: NoticeLogEntry; index: number } | undefined> {
  if (!isUuid(noticeId)) return undefined;
  const covered = await checkpointSize(bus);
  const index = await indexOf(bus, noticeId);
  if (index !== undefined) {
    const m = await bus.getMessage(STREAMS.log, index + 1);
    const entry = m ? asNoticeEntry(m.data, noticeId) : undefined;
    if (entry) return { entry, index };
  }
  let seq = covered + 1;
  for (let scanned = 0; ; scanned++) {
    if (scanned >= maxScan) {
      throw new LiaisonError('unavailable', {
        detail: `log-index lags more than ${maxScan} notice entries behind LOG`,
      });
    }
    const m = await bus.nextMessage(STREAMS.log, seq, NOTICE_SUBJECT, `scan LOG from ${seq}`);
    if (!m) return undefined;
    const entry = asNoticeEntry(m.data, noticeId);
    if (entry) return { entry, index: m.seq - 1 };
    seq = m.seq + 1;
  }
}
