/**
 * A notice's data key for sealing something that belongs to the notice (the
 * notice itself, a complaint that may quote it): the key already stored in
 * NOTICE_KEYS, or, for a notice that has none yet (stored in clear before
 * sealing at rest), a new one stored create-only, so a racing writer seals
 * with the same key. null when the notice was erased: nothing more of it may
 * be stored.
 */
import { LiaisonError } from '../core/errors.js';
import type { StorePort } from '../core/store-port.js';
import { isErased, storeNoticeKey } from './notice-keys.js';
import { storageKeyFor, type StorageKeyring } from './open.js';
import { newDataKey, sealNotice, unwrapDataKey, wrapDataKey } from './seal.js';

export async function noticeDataKey(
  bus: StorePort,
  keys: StorageKeyring,
  noticeId: string,
): Promise<Uint8Array | null> {
  const current = keys.storageKey;
  if (!current) throw new LiaisonError('unavailable', { detail: 'no broker storage key taken up yet' });
  const dataKey = newDataKey();
  const { stored, created } = await storeNoticeKey(bus, noticeId, wrapDataKey(dataKey, current));
  // The record stored is the one just wrapped: its key is at hand, unwrapping it again would only cost CPU.
  if (created) return dataKey;
  if (isErased(stored)) return null;
  return unwrapDataKey(stored, storageKeyFor(keys, stored.kek));
}

/**
 * Seal `bytes` under the data key of notice `noticeId` (seal.ts; `format`
 * names what it is, after `liaison-notice+` in `cty`): openStoredNotice opens
 * it, and erasing the notice shreds it with the notice. null when the notice
 * was erased.
 */
export async function sealWithNoticeKey(
  bus: StorePort,
  keys: StorageKeyring,
  noticeId: string,
  format: string,
  bytes: Uint8Array,
): Promise<Uint8Array | null> {
  const dataKey = await noticeDataKey(bus, keys, noticeId);
  return dataKey ? sealNotice(noticeId, format, bytes, dataKey) : null;
}
