import type { KV, KvPutOptions } from 'nats';
import type { KvBucket, KvBucketOptions, PublishAck, PublishOptions } from '../core/store-port.js';
import { isNotFound, isWrongLastSequence, natsUnavailable } from './errors.js';

/** A write only if the subject never held a message: JetStream's expected last subject sequence 0. */
const NEVER_WRITTEN: PublishOptions = { expectLastSubjectSequence: 0 };
const NEVER_WRITTEN_KV: Partial<KvPutOptions> = { previousSeq: 0 };

type Publish = (subject: string, data: Uint8Array, opts: PublishOptions) => Promise<PublishAck>;

/**
 * The port's KV bucket over a nats.js KV: a missing key (or bucket) reads as
 * null, a lost conditional write as undefined/false, anything else is the one
 * `unavailable` (errors.ts), named `<bucket> <operation>`.
 */
export function natsKvBucket(
  kv: KV,
  name: string,
  opts: Pick<KvBucketOptions, 'putIfNewWithPublishes'>,
  publish: Publish,
): KvBucket {
  const lostOr = <T>(e: unknown, lost: T, what: string): T => {
    if (isWrongLastSequence(e)) return lost;
    throw natsUnavailable(e, what);
  };
  const withPublishes = opts.putIfNewWithPublishes === true;
  return {
    async get(key, what) {
      try {
        return await kv.get(key);
      } catch (e) {
        if (isNotFound(e)) return null;
        throw natsUnavailable(e, what ?? `${name} get`);
      }
    },
    async put(key, value, what) {
      try {
        return await kv.put(key, value);
      } catch (e) {
        throw natsUnavailable(e, what ?? `${name} put`);
      }
    },
    async create(key, value, what) {
      try {
        return await kv.create(key, value);
      } catch (e) {
        return lostOr(e, undefined, what ?? `${name} create`);
      }
    },
    async putIfNew(key, value, what) {
      try {
        // With publishes: the KV's own subject for the key, through the shared publish path (connection.ts: turnBarrier).
        if (withPublishes) await publish(`$KV.${name}.${key}`, value, NEVER_WRITTEN);
        else await kv.put(key, value, NEVER_WRITTEN_KV);
        return true;
      } catch (e) {
        return lostOr(e, false, what ?? `${name} create`);
      }
    },
    async update(key, value, revision, what) {
      try {
        return await kv.update(key, value, revision);
      } catch (e) {
        return lostOr(e, undefined, what ?? `${name} update`);
      }
    },
    async keys() {
      try {
        return await kv.keys();
      } catch (e) {
        throw natsUnavailable(e, `${name} keys`);
      }
    },
    async history({ key }) {
      try {
        return await kv.history({ key });
      } catch (e) {
        throw natsUnavailable(e, `${name} history`);
      }
    },
    async watch({ key, initializedFn }) {
      try {
        return await kv.watch({ key, ...(initializedFn ? { initializedFn } : {}) });
      } catch (e) {
        throw natsUnavailable(e, `${name} watch`);
      }
    },
  };
}
