/**
 * The short-lived JetStream consumer behind one inbox read (a page or an SSE
 * stream). Created explicitly, not as a nats.js ordered consumer: those ignore
 * `inactive_threshold` and the server keeps them for 300 s after the read,
 * so every read left one behind (800 reads, 800 consumers). This one is
 * deleted when the read ends, and should the delete be lost (gateway crash,
 * NATS outage) the server drops it after INBOX_CONSUMER_IDLE_MS without a pull.
 */
import { AckPolicy, DeliverPolicy, type Consumer } from 'nats';
import type { NatsBus } from '../nats/connection.js';
import { STREAMS } from '../nats/streams.js';

/** Server-side inactivity threshold of an inbox read consumer; longer than any one pull waits (5 s). */
export const INBOX_CONSUMER_IDLE_MS = 10_000;

export interface InboxConsumer {
  readonly name: string;
  readonly consumer: Consumer;
  /** Delete it on the server; never throws (the inactivity threshold is the fallback). */
  close(): Promise<void>;
}

/** An ephemeral pull consumer on DELIVERIES for `subject`, from stream sequence `startSeq`, no acks. */
export async function openInboxConsumer(bus: NatsBus, subject: string, startSeq: number): Promise<InboxConsumer> {
  const info = await bus.jsm.consumers.add(STREAMS.deliveries, {
    filter_subject: subject,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, startSeq),
    ack_policy: AckPolicy.None,
    inactive_threshold: INBOX_CONSUMER_IDLE_MS * 1_000_000,
    mem_storage: true,
    num_replicas: 1,
  });
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= bus.jsm.consumers.delete(STREAMS.deliveries, info.name).then(
      () => undefined,
      () => undefined,
    ));
  try {
    return { name: info.name, consumer: await bus.js.consumers.get(STREAMS.deliveries, info.name), close };
  } catch (e) {
    await close();
    throw e;
  }
}
