import type { KV, KvOptions } from 'nats';
import type { NatsBus } from './connection.js';

const opened = new WeakMap<NatsBus, Map<string, Promise<KV>>>();

/**
 * A KV bucket opened (created when missing) once per connection, with the
 * options of the first call (the gateway's, at start: the stream replicas).
 * A failed open is forgotten, so the next call tries again.
 */
export function openBucketOnce(bus: NatsBus, bucket: string, opts: Partial<KvOptions>): Promise<KV> {
  let byName = opened.get(bus);
  if (!byName) opened.set(bus, (byName = new Map<string, Promise<KV>>()));
  let kv = byName.get(bucket);
  if (!kv) {
    kv = bus.kv(bucket, opts);
    kv.catch(() => byName.delete(bucket));
    byName.set(bucket, kv);
  }
  return kv;
}
