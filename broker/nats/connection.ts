import { connect, headers as natsHeaders, Events, type NatsConnection, type JetStreamClient, type JetStreamManager, type PubAck, type StoredMsg, type KV, type KvOptions } from 'nats';
import type { Logger } from 'pino';
import { LiaisonError } from '../core/errors.js';

export interface PublishOptions {
  msgID: string;
  headers?: Record<string, string>;
  /** Refuse unless the stream's last sequence is this (optimistic concurrency). */
  expectLastSequence?: number;
}

/**
 * The one NATS connection of a gateway process. Every NATS call of the broker
 * goes through here, so transport failures are translated once into
 * `unavailable` (503 with Retry-After), keeping the original as `cause`.
 */
export interface NatsBus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  isConnected(): boolean;
  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PubAck>;
  getMessage(stream: string, seq: number): Promise<StoredMsg | null>;
  kv(bucket: string, opts?: Partial<KvOptions>): Promise<KV>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  servers: string;
  name: string;
  publishTimeoutMs: number;
  retryAfterSeconds: number;
  logger: Logger;
}

export async function connectNats(opts: ConnectOptions): Promise<NatsBus> {
  const nc = await connect({
    servers: opts.servers.split(',').map((s) => s.trim()),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 5000,
    maxPingOut: 2,
    waitOnFirstConnect: false,
  });
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        connected = false;
        opts.logger.warn({ event: 'nats-disconnect' }, 'NATS connection lost');
      } else if (s.type === Events.Reconnect) {
        connected = true;
        opts.logger.info({ event: 'nats-reconnect' }, 'NATS connection restored');
      }
    }
  })();
  const js = nc.jetstream({ timeout: opts.publishTimeoutMs });
  const jsm = await nc.jetstreamManager({ timeout: opts.publishTimeoutMs });
  const unavailable = (cause: unknown, what: string) =>
    new LiaisonError('unavailable', { detail: `${what}: ${(cause as Error)?.message ?? String(cause)}`, cause, retryAfter: opts.retryAfterSeconds });
  const guard = (what: string) => {
    if (!connected || nc.isClosed()) throw unavailable(new Error('not connected'), what);
  };

  return {
    nc,
    js,
    jsm,
    isConnected: () => connected && !nc.isClosed(),
    async publish(subject, data, p) {
      guard('publish');
      const h = natsHeaders();
      for (const [k, v] of Object.entries(p.headers ?? {})) h.set(k, v);
      try {
        return await js.publish(subject, data, {
          msgID: p.msgID,
          headers: h,
          timeout: opts.publishTimeoutMs,
          ...(p.expectLastSequence === undefined ? {} : { expect: { lastSequence: p.expectLastSequence } }),
        });
      } catch (e) {
        throw unavailable(e, `publish ${subject}`);
      }
    },
    async getMessage(stream, seq) {
      guard('get');
      try {
        return await jsm.streams.getMessage(stream, { seq });
      } catch (e) {
        if ((e as { code?: string }).code === '404' || /no message found/i.test((e as Error).message)) return null;
        throw unavailable(e, `get ${stream}#${seq}`);
      }
    },
    async kv(bucket, kvOpts) {
      guard('kv');
      try {
        return await js.views.kv(bucket, { timeout: opts.publishTimeoutMs, ...kvOpts });
      } catch (e) {
        throw unavailable(e, `kv ${bucket}`);
      }
    },
    async close() {
      if (nc.isClosed()) return;
      // Drain flushes pending work, but needs a server: bound it, then close.
      if (connected) {
        const drained = nc.drain().then(() => true, () => false);
        const timedOut = new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref());
        if (await Promise.race([drained, timedOut])) return;
      }
      await nc.close();
    },
  };
}
