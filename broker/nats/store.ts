import type { JetStreamClient, JetStreamManager, KvOptions } from 'nats';
import type { KvBucketOptions, PublishAck, PublishOptions, StorePort } from '../core/store-port.js';
import { isNotFound, natsUnavailable } from './errors.js';
import { natsKvBucket } from './kv-bucket.js';
import { getNextMessage } from './next-message.js';

/** What the port's stream and bucket calls need of the connection (connection.ts). */
export interface JetStreamParts {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** Throws `unavailable` while the connection is down. */
  guard: (what: string) => void;
  publish: (subject: string, data: Uint8Array, opts: PublishOptions) => Promise<PublishAck>;
  timeoutMs: number;
}

/** JetStream's default duplicate window (2 minutes), for a stream that states none. */
const DEFAULT_DUPLICATE_WINDOW_NS = 120e9;

/** The StorePort calls beyond publish and getMessage (connection.ts has those), over JetStream. */
export function jetStreamStore(
  p: JetStreamParts,
): Pick<
  StorePort,
  'bucket' | 'lastMessage' | 'nextMessage' | 'deleteMessage' | 'eraseMessage' | 'streamInfo' | 'consumerInfo'
> {
  const { js, jsm, guard } = p;
  async function removeMessage(stream: string, seq: number, erase: boolean, what: string): Promise<boolean> {
    guard(erase ? 'erase' : 'delete');
    try {
      // nats.js's third argument is `erase`: overwrite the message's bytes in the store, not only mark it deleted.
      return await jsm.streams.deleteMessage(stream, seq, erase);
    } catch (e) {
      if (isNotFound(e)) return false;
      throw natsUnavailable(e, what);
    }
  }
  return {
    async bucket(name, o: KvBucketOptions = {}) {
      guard('kv');
      const kvOpts: Partial<KvOptions> = { timeout: p.timeoutMs };
      if (o.history !== undefined) kvOpts.history = o.history;
      if (o.ttlMs !== undefined) kvOpts.ttl = o.ttlMs;
      if (o.replicas !== undefined) kvOpts.replicas = o.replicas;
      if (o.bindOnly !== undefined) kvOpts.bindOnly = o.bindOnly;
      try {
        return natsKvBucket(await js.views.kv(name, kvOpts), name, o, p.publish);
      } catch (e) {
        throw natsUnavailable(e, `kv ${name}`);
      }
    },
    async lastMessage(stream, subject, what) {
      guard('get');
      try {
        return await jsm.streams.getMessage(stream, { last_by_subj: subject });
      } catch (e) {
        if (isNotFound(e)) return null;
        throw natsUnavailable(e, what ?? `get ${stream} last ${subject}`);
      }
    },
    async nextMessage(stream, seq, subject, what) {
      guard('get');
      try {
        return await getNextMessage(jsm, stream, seq, subject);
      } catch (e) {
        if (isNotFound(e)) return null;
        throw natsUnavailable(e, what ?? `get ${stream} ${subject} from #${seq}`);
      }
    },
    async deleteMessage(stream, seq, what) {
      return removeMessage(stream, seq, false, what ?? `delete ${stream}#${seq}`);
    },
    async eraseMessage(stream, seq, what) {
      return removeMessage(stream, seq, true, what ?? `erase ${stream}#${seq}`);
    },
    async streamInfo(stream) {
      guard('stream info');
      let info;
      try {
        info = await jsm.streams.info(stream);
      } catch (e) {
        if (isNotFound(e, 'stream')) return null;
        throw natsUnavailable(e, `${stream} info`);
      }
      return {
        firstSeq: info.state.first_seq,
        lastSeq: info.state.last_seq,
        messages: info.state.messages,
        lastTime: info.state.last_ts,
        duplicateWindowMs: Math.floor((info.config.duplicate_window ?? DEFAULT_DUPLICATE_WINDOW_NS) / 1e6),
      };
    },
    async consumerInfo(stream, consumer) {
      guard('consumer info');
      try {
        const c = await jsm.consumers.info(stream, consumer);
        return { pending: c.num_pending, ackPending: c.num_ack_pending };
      } catch (e) {
        if (isNotFound(e, 'consumer')) return null;
        throw natsUnavailable(e, `${stream} consumer ${consumer} info`);
      }
    },
  };
}
