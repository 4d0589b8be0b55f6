/**
 * What the broker needs from its message store's consumers, and nothing more:
 * reading a stream in order from a sequence (the checkpointer's LOG reader),
 * short-lived readers deleted after use (inbox reads), and durable consumers
 * with explicit acks (the router's on NOTICES).
 * Types only; the one implementation is JetStream (broker/nats/consumers.ts),
 * wired in by the composition root beside the StorePort (store-port.ts).
 *
 * Unlike the StorePort, a failure here is thrown as the store gave it: every
 * caller is a background loop that logs it and reads again.
 */

import type { MessageHeaders } from './store-port.js';

/** One message of a stream, as a consumer delivers it. */
export interface ConsumedMessage {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly headers?: MessageHeaders | undefined;
}

/** A short-lived reader's message: how many matching messages are still behind it. */
export interface PendingMessage extends ConsumedMessage {
  readonly info: { readonly pending: number };
}

/**
 * A reader that lives on the server until close() (which never throws), or
 * until nobody pulled from it for its inactivity threshold.
 */
export interface EphemeralReader extends StreamReader<PendingMessage> {
  readonly name: string;
  close(): Promise<void>;
}

/** One pull's messages as they come; stop() ends the iteration early. */
export interface MessageBatch<M> extends AsyncIterable<M> {
  stop(): void;
}

/** A pull reader: each fetch asks for up to `maxMessages`, waiting at most `expiresMs` for them. */
export interface StreamReader<M = ConsumedMessage> {
  fetch(opts: { maxMessages: number; expiresMs: number }): Promise<MessageBatch<M>>;
}

/** A message of a durable consumer: settled by the one who took it. */
export interface AckableMessage extends ConsumedMessage {
  readonly info: {
    /** When the stream stored it (ns since the epoch). */
    readonly timestampNanos: number;
    /** Delivered before (and not acked then). */
    readonly redelivered: boolean;
  };
  /** Done; not confirmed (a lost ack only redelivers it). */
  ack(): void;
  /** Done, once the store confirms it. */
  ackAck(): Promise<boolean>;
  /** Deliver it again, after `delayMs`. */
  nak(delayMs?: number): void;
  /** Never deliver it again. */
  term(): void;
  /** Still at it: the ack wait starts again. */
  working(): void;
}

/** A durable pull consumer with explicit acks. */
export interface DurableConsumerSpec {
  name: string;
  /** Only the messages on this subject (wildcards allowed); default all. */
  filterSubject?: string;
  /** Where a new consumer starts: the whole stream, or what is stored from now on. */
  deliver: 'all' | 'new';
  ackWaitMs: number;
  /** Messages delivered and not settled at most. */
  maxAckPending: number;
}

export interface ConsumerPort {
  /**
   * Make the durable consumer on `stream` if it is missing. One that exists is
   * left as it is, unless `reconfigure`: then it is brought to the spec's ack
   * wait and max ack pending.
   */
  ensureDurable(stream: string, spec: DurableConsumerSpec, opts: { reconfigure: boolean }): Promise<void>;
  /** Consume the durable consumer `name`: pulls of up to `maxMessages`, each waiting at most `expiresMs`, for as long as the iteration goes on. */
  consume(
    stream: string,
    name: string,
    opts: { maxMessages: number; expiresMs: number },
  ): Promise<MessageBatch<AckableMessage>>;
  /** Read `stream` in order from sequence `startSeq`, without acks (nothing is kept on the server for it). */
  orderedReader(stream: string, startSeq: number): Promise<StreamReader>;
  /**
   * A reader of `stream`'s messages on `filterSubject` from sequence `startSeq`,
   * without acks, kept in memory on one server, dropped by the server after
   * `inactiveMs` without a pull should close() be lost.
   */
  openEphemeral(
    stream: string,
    opts: { filterSubject: string; startSeq: number; inactiveMs: number },
  ): Promise<EphemeralReader>;
}
