/**
 * What the broker needs from its message store, and nothing more: KV buckets,
 * stream publishes and reads, stream and consumer state, the connection's
 * state. Types only; the one implementation is NATS JetStream
 * (broker/nats/store.ts), wired in by the composition root, so the registry,
 * keys, log, auth, acks and metrics never import NATS.
 *
 * What a failure means is decided once, in the implementation:
 * - not there (no such key, message, stream or consumer): `null`;
 * - a conditional write lost to another writer: `undefined` or `false`;
 * - anything else: a thrown `unavailable` LiaisonError (503; its Retry-After is
 *   added at the HTTP edge from the configuration).
 */

export type KvOperation = 'PUT' | 'DEL' | 'PURGE';

/** One revision of a KV key; a delete or purge marker has an empty value. */
export interface KvRecord {
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
  readonly operation: KvOperation;
  readonly created: Date;
}

/** A running watch: the revisions as they come; stop() ends the iteration. */
export interface KvWatch extends AsyncIterable<KvRecord> {
  stop(): void;
}

export interface KvBucketOptions {
  /** Revisions kept per key. */
  history?: number;
  /** Age after which a revision is dropped (bucket-wide). */
  ttlMs?: number;
  replicas?: number;
  /** Bind to an existing bucket; never create one. */
  bindOnly?: boolean;
  /**
   * putIfNew leaves with the turn's stream publishes, in one socket write,
   * instead of a write of its own (the ingest hot path's notice-id claim).
   */
  putIfNewWithPublishes?: boolean;
}

/**
 * A KV bucket. `what`, where a call takes it, names the call in the detail of
 * its `unavailable` (default: `<bucket> <operation>`), for the logs.
 */
export interface KvBucket {
  /** The newest revision of `key` (a delete marker too); null when there is none. */
  get(key: string, what?: string): Promise<KvRecord | null>;
  /** Write unconditionally; the new revision. */
  put(key: string, value: Uint8Array, what?: string): Promise<number>;
  /** Write when the key holds no value (it may hold a delete marker); the new revision, or undefined when it holds one. */
  create(key: string, value: Uint8Array, what?: string): Promise<number | undefined>;
  /** Write only when the key was never written (a delete marker counts as written); false when it was. */
  putIfNew(key: string, value: Uint8Array, what?: string): Promise<boolean>;
  /** Write when `revision` is still the key's newest; the new revision, or undefined when someone wrote first. */
  update(key: string, value: Uint8Array, revision: number, what?: string): Promise<number | undefined>;
  /** Every key holding a value now. */
  keys(): Promise<AsyncIterable<string>>;
  /** Every revision the bucket keeps of keys matching `key` (`>` and `*` wildcards), oldest first. */
  history(opts: { key: string }): Promise<AsyncIterable<KvRecord>>;
  /** The newest revision of every matching key (no delete markers), `initializedFn` once those are delivered, then each change. */
  watch(opts: { key: string; initializedFn?: () => void }): Promise<KvWatch>;
}

/** A message's headers: get() answers "" for a header that is not there. */
export interface MessageHeaders {
  get(name: string): string;
}

/** A stored stream message, as read back. */
export interface StoredMessage {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly header?: MessageHeaders | undefined;
  /** When the stream stored it. */
  readonly time?: Date | undefined;
}

export interface PublishOptions {
  /** The stream's Msg-Id (de-duplicated within the stream's window); none for a write that must never count as a duplicate. */
  msgID?: string;
  headers?: Record<string, string>;
  /** Refuse unless the stream's last sequence is this (optimistic concurrency). */
  expectLastSequence?: number;
  /** Refuse unless the subject's last sequence is this; 0: only if the subject holds nothing (a create-only KV key). */
  expectLastSubjectSequence?: number;
}

export interface PublishAck {
  readonly seq: number;
  /** The Msg-Id was seen inside the duplicate window: nothing was written, `seq` is the first write's. */
  readonly duplicate: boolean;
}

export interface StreamState {
  /** 0 when the stream is empty. */
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly messages: number;
  /** When the last message was stored (ISO 8601). */
  readonly lastTime: string;
  readonly duplicateWindowMs: number;
}

export interface ConsumerState {
  /** Messages not delivered yet. */
  readonly pending: number;
  /** Delivered, not acknowledged yet. */
  readonly ackPending: number;
}

/** `what`, where a call takes it, names the call in the detail of its `unavailable`, for the logs. */
export interface StorePort {
  isConnected(): boolean;
  /** Call `fn` each time the connection comes back after a loss (not on the first connect); returns an unsubscribe. */
  onReconnect(fn: () => void): () => void;
  /** Open a KV bucket (created when missing, unless bindOnly). */
  bucket(name: string, opts?: KvBucketOptions): Promise<KvBucket>;
  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PublishAck>;
  /** The message at `seq`; null when there is none (never written, or deleted). */
  getMessage(stream: string, seq: number): Promise<StoredMessage | null>;
  /** The newest message on `subject`; null when there is none. */
  lastMessage(stream: string, subject: string, what?: string): Promise<StoredMessage | null>;
  /** The first message on `subject` (wildcards allowed) at or after `seq`; null when there is none. */
  nextMessage(stream: string, seq: number, subject: string, what?: string): Promise<StoredMessage | null>;
  /** Remove the message at `seq` (not erased); false when there is none. */
  deleteMessage(stream: string, seq: number, what?: string): Promise<boolean>;
  /**
   * Remove the message at `seq` and overwrite its stored bytes (JetStream's
   * secure delete: the stream must allow deletes); false when there is none.
   */
  eraseMessage(stream: string, seq: number, what?: string): Promise<boolean>;
  /** null when the stream does not exist. */
  streamInfo(stream: string): Promise<StreamState | null>;
  /** null when the consumer does not exist. */
  consumerInfo(stream: string, consumer: string): Promise<ConsumerState | null>;
}
