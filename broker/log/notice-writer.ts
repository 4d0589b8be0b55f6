/**
 * Ingest's writer of the log (step 7): a new notice goes to NOTICES, its entry
 * to LOG (broker/log/append.ts, the one LOG writer) and its id to KV
 * `notice-ids`. The ingest pipeline sees only the LogWriter interface
 * (writer.ts).
 */
import { LiaisonError } from '../core/errors.js';
import { subjectToken } from '../core/ids.js';
import type { KvBucket, StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { appendEntry, ENTRY_HEADER } from './append.js';
import { decodeEntry, encodeEntry, type NoticeLogEntry } from './entry.js';
import { ENTRY_SIGNATURE_HEADER, signEntry } from './entry-signature.js';
import { findNoticeLogged } from './notice-lookup.js';
import { noticeDataKey } from '../vault/data-key.js';
import type { StorageKeyring } from '../vault/open.js';
import { openSealed, parseSealed, sealNotice } from '../vault/seal.js';
import type { LogWriter, StoreInput, StoreResult } from './writer.js';

/** The LogWriter over JetStream: NOTICE_KEYS, NOTICES, LOG and KV `notice-ids` (storeAndLog). */
export const natsLogWriter = (bus: StorePort, keys: StorageKeyring): LogWriter => ({
  append: (input) => storeAndLog(bus, keys, input),
});

export const noticeSubject = (e: Pick<NoticeLogEntry, 'operation' | 'origin' | 'type'>) =>
  `notices.${subjectToken(e.operation, 'operation')}.${subjectToken(e.origin.country, 'origin.country')}.${subjectToken(e.type, 'type')}`;

const bytesEqual = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

/**
 * KV bucket `notice-ids`: one create-only record per notice id ever accepted
 * (key = id, value = lower-case hex SHA-256 of the signed bytes), no TTL. It
 * makes notice ids unique for the log's lifetime, beyond the JetStream
 * duplicate window: another notice under a known id is a conflict, from
 * anyone, at any age.
 */
export const NOTICE_IDS_BUCKET = 'notice-ids';

const noticeIds = new WeakMap<StorePort, Promise<KvBucket>>();

/**
 * Open (create) the notice-ids bucket once per connection, with the options of
 * the first call: the gateway calls it at start with the stream replicas,
 * ingest reuses it. A failed open is forgotten, so the next call tries again.
 * Its claims leave with the turn's NOTICES and LOG publishes, in one socket
 * write, where a write of their own would cost one more on every notice.
 */
export function openNoticeIds(bus: StorePort, replicas = 1): Promise<KvBucket> {
  let kv = noticeIds.get(bus);
  if (!kv) {
    kv = bus.bucket(NOTICE_IDS_BUCKET, { history: 1, replicas, putIfNewWithPublishes: true });
    kv.catch(() => noticeIds.delete(bus));
    noticeIds.set(bus, kv);
  }
  return kv;
}

const windows = new WeakMap<StorePort, Promise<number>>();
/** NOTICES' duplicate window in ms (read once per connection). */
export function duplicateWindowMs(bus: StorePort): Promise<number> {
  let w = windows.get(bus);
  if (!w) {
    w = bus.streamInfo(STREAMS.notices).then((i) => {
      if (!i) throw new LiaisonError('unavailable', { detail: `${STREAMS.notices} info: no such stream` });
      return i.duplicateWindowMs;
    });
    w.catch(() => windows.delete(bus));
    windows.set(bus, w);
  }
  return w;
}

type Claim = { kind: 'new' } | { kind: 'retry'; claimedAt: number };

/** Claim a notice id for these bytes: new, a retry of the same bytes (with when it was first claimed), or a conflict. */
async function claimNoticeId(bus: StorePort, noticeId: string, sha256: string): Promise<Claim> {
  const kv = await openNoticeIds(bus);
  if (await kv.putIfNew(noticeId, new TextEncoder().encode(sha256))) return { kind: 'new' };
  const held = await kv.get(noticeId);
  if (!held) throw new LiaisonError('unavailable', { detail: `notice-ids: ${noticeId} exists but cannot be read` });
  if (new TextDecoder().decode(held.value) !== sha256) throw new LiaisonError('duplicate-conflict');
  return { kind: 'retry', claimedAt: held.created.getTime() };
}

/** Whether a stored NOTICES body holds exactly `signed`: a sealed one is opened with the notice's key, a legacy clear one compared as is. */
function holdsSigned(noticeId: string, stored: Uint8Array, signed: Uint8Array, dataKey: Uint8Array): boolean {
  const sealed = parseSealed(stored);
  if (!sealed) return bytesEqual(stored, signed);
  return bytesEqual(openSealed(noticeId, sealed, dataKey), signed);
}

/**
 * Step 7: claim the notice id (create-only, `notice-ids`), store its data key
 * (NOTICE_KEYS, create-only), the notice sealed under it in NOTICES
 * (broker/vault/) and its commitment in LOG, the notice id as Msg-Id on
 * both, and wait for both JetStream acks. The entry is signed here
 * (broker/log/entry-signature.ts) and the entry and its signature travel in
 * the NOTICES headers, so whoever finds a notice without its entry (a retry,
 * the router after a crash) appends exactly that entry with exactly that
 * signature, and never signs bytes read back from a stream.
 *
 * A notice id already claimed for other bytes is a conflict, at any age. A
 * retry of the same bytes inside the duplicate window writes nothing new
 * (Msg-Id) and returns the original entry; after the window it is answered
 * from the log (log-index, else a scan of the unindexed tail). A claim whose
 * store never happened (a crash in between) is completed by the retry. The
 * entry's sha256 commits to the signed bytes as received, not to the sealed
 * ones.
 */
export async function storeAndLog(bus: StorePort, keys: StorageKeyring, input: StoreInput): Promise<StoreResult> {
  const { signed } = input;
  const msgID = input.entry.notice_id;
  const claim = await claimNoticeId(bus, msgID, input.entry.sha256);
  if (claim.kind === 'retry' && Date.now() - claim.claimedAt > (await duplicateWindowMs(bus)) - 5000) {
    // Past (or at the edge of) the duplicate window, Msg-Id no longer de-duplicates: answer from the log.
    const found = await findNoticeLogged(bus, msgID);
    if (found) {
      if (found.entry.sha256 !== input.entry.sha256) throw new LiaisonError('duplicate-conflict');
      return { logIndex: found.index, entry: found.entry, duplicate: true };
    }
    // Claimed, never logged: a crash between the claim and the store. Store it now.
  }
  const dataKey = await noticeDataKey(bus, keys, msgID);
  if (!dataKey) {
    // Erased: the id stays taken; a retry of the same bytes is answered from the log, nothing is stored again.
    const found = await findNoticeLogged(bus, msgID);
    if (found?.entry.sha256 !== input.entry.sha256) throw new LiaisonError('duplicate-conflict');
    return { logIndex: found.index, entry: found.entry, duplicate: true };
  }
  let entryBytes = encodeEntry(input.entry);
  let signature: string | undefined = signEntry(input.signer, entryBytes);
  const noticeAck = await bus.publish(
    noticeSubject(input.entry),
    sealNotice(msgID, input.entry.format, signed, dataKey),
    {
      msgID,
      headers: {
        'Liaison-Notice-Id': msgID,
        'Liaison-Format': input.entry.format,
        [ENTRY_HEADER]: Buffer.from(entryBytes).toString('base64url'),
        [ENTRY_SIGNATURE_HEADER]: signature,
      },
    },
  );
  if (noticeAck.duplicate) {
    const stored = await bus.getMessage(STREAMS.notices, noticeAck.seq);
    if (!stored)
      throw new LiaisonError('unavailable', { detail: `NOTICES#${noticeAck.seq} vanished after a duplicate ack` });
    if (!holdsSigned(msgID, stored.data, signed, dataKey)) throw new LiaisonError('duplicate-conflict');
    const header = stored.header?.get(ENTRY_HEADER);
    if (header) {
      // The original entry with its original signature (none on a notice stored before entry signatures).
      entryBytes = Buffer.from(header, 'base64url');
      signature = stored.header?.get(ENTRY_SIGNATURE_HEADER) || undefined;
    }
  }
  const logAck = await appendEntry(bus, msgID, entryBytes, signature);
  let entry = decodeEntry(entryBytes) as NoticeLogEntry;
  if (logAck.duplicate) {
    const stored = await bus.getMessage(STREAMS.log, logAck.seq);
    if (!stored) throw new LiaisonError('unavailable', { detail: `LOG#${logAck.seq} vanished after a duplicate ack` });
    entry = decodeEntry(stored.data) as NoticeLogEntry;
    if (entry.sha256 !== input.entry.sha256) throw new LiaisonError('duplicate-conflict');
  }
  return { logIndex: logAck.seq - 1, entry, duplicate: noticeAck.duplicate && logAck.duplicate };
}
