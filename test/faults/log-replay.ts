import { decodeEntry, type NoticeLogEntry } from '../../broker/log/entry.js';
import type { NatsBus } from '../../broker/nats/connection.js';
import { STREAMS } from '../../broker/nats/streams.js';
import { waitFor } from '../helpers/wait.js';

/** Retry a read while the cluster is still electing leaders after a restart (as an auditor's client would), within 30 s. */
export const whenReadable = <T>(what: string, read: () => Promise<T>) =>
  waitFor(() => read().catch(() => undefined), what, 30_000);

/** Replay LOG from the start: notice id -> the log indexes where its entry appears. */
export async function replayLog(bus: NatsBus): Promise<Map<string, { index: number; entry: NoticeLogEntry }[]>> {
  const info = await whenReadable('LOG stream info', () => bus.jsm.streams.info(STREAMS.log));
  const seen = new Map<string, { index: number; entry: NoticeLogEntry }[]>();
  for (let s = info.state.first_seq; s > 0 && s <= info.state.last_seq; s++) {
    const m = await whenReadable(`LOG#${s}`, () => bus.getMessage(STREAMS.log, s));
    if (!m) continue;
    const entry = decodeEntry(m.data) as NoticeLogEntry;
    if (entry.kind !== 'notice') continue;
    seen.set(entry.notice_id, [...(seen.get(entry.notice_id) ?? []), { index: s - 1, entry }]);
  }
  return seen;
}
