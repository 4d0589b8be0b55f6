import type { KvBucket, KvBucketOptions, StorePort } from './store-port.js';

const opened = new WeakMap<StorePort, Map<string, Promise<KvBucket>>>();

/**
 * A KV bucket opened (created when missing) once per store, with the
 * options of the first call (the gateway's, at start: the stream replicas).
 * A failed open is forgotten, so the next call tries again.
 */
export function openBucketOnce(store: StorePort, bucket: string, opts: KvBucketOptions): Promise<KvBucket> {
  let byName = opened.get(store);
  if (!byName) opened.set(store, (byName = new Map<string, Promise<KvBucket>>()));
  let kv = byName.get(bucket);
  if (!kv) {
    kv = store.bucket(bucket, opts);
    kv.catch(() => byName.delete(bucket));
    byName.set(bucket, kv);
  }
  return kv;
}
