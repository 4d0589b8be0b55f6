/**
 * The one reader of a NOTICES body: everything that needs a stored notice's
 * signed bytes (the router, the audit export, tests and the bench) opens it
 * here. A body is one of three things:
 *
 *  - sealed (seal.ts): opened with its data key from NOTICE_KEYS;
 *  - sealed, and its key is a tombstone: the notice was erased, by an event
 *    the result names (a typed result, not an error);
 *  - not sealed at all: a notice stored in clear before sealing at rest, read
 *    as it is (the log entry's sha256 still says whether it is the notice).
 *
 * Anything else (a sealed body without a key, a key that does not unwrap, a
 * body that does not open) is junk: SealError (`log-state-invalid`), which
 * readers report as an integrity finding.
 */
import { LiaisonError } from '../core/errors.js';
import type { StorePort } from '../core/store-port.js';
import { isErased, readNoticeKey } from './notice-keys.js';
import { openSealed, parseSealed, SealError, unwrapDataKey, type StorageKey } from './seal.js';

/** What the vault needs of the broker keyring (BrokerKeyring is one). */
export interface StorageKeyring {
  /** The current storage key; undefined on a keyring from before sealing at rest. */
  readonly storageKey: StorageKey | undefined;
  storageKeyById(kid: string): StorageKey | undefined;
}

export type OpenedNotice =
  | { kind: 'sealed'; signed: Uint8Array }
  | { kind: 'clear'; signed: Uint8Array }
  | { kind: 'erased'; erasedBy: string; erasedAt: string };

/** The storage key a record names; one this instance does not hold (yet: a rotation not taken up) is retryable. */
export function storageKeyFor(keys: StorageKeyring, kid: string): StorageKey {
  const k = keys.storageKeyById(kid);
  if (!k) throw new LiaisonError('unavailable', { detail: `storage key ${kid} is not in this instance's keyring` });
  return k;
}

/** Open the stored body of notice `noticeId` (see the file comment). */
export async function openStoredNotice(
  bus: StorePort,
  keys: StorageKeyring,
  noticeId: string,
  data: Uint8Array,
): Promise<OpenedNotice> {
  // Parsed once: the header decides what the body is, and the same parts are then opened.
  const sealed = parseSealed(data);
  if (!sealed) return { kind: 'clear', signed: data };
  if (sealed.header.noticeId !== noticeId) throw new SealError('a sealed notice of another notice id');
  const record = await readNoticeKey(bus, noticeId);
  if (!record) throw new SealError('a sealed notice without its key record');
  if (isErased(record)) return { kind: 'erased', erasedBy: record.erased_by, erasedAt: record.erased_at };
  const dataKey = unwrapDataKey(record, storageKeyFor(keys, record.kek));
  return { kind: 'sealed', signed: openSealed(noticeId, sealed, dataKey) };
}
