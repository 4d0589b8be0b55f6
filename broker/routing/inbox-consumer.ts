/**
 * The short-lived consumer behind one inbox read (a page or an SSE stream),
 * deleted when the read ends; should the delete be lost (gateway crash, NATS
 * outage) the server drops it after INBOX_CONSUMER_IDLE_MS without a pull, so
 * no read leaves one behind (they used to: 800 reads, 800 consumers).
 */
import type { ConsumerPort, EphemeralReader } from '../core/consumer-port.js';
import { STREAMS } from '../core/stream-names.js';

/** Server-side inactivity threshold of an inbox read consumer; longer than any one pull waits (5 s). */
export const INBOX_CONSUMER_IDLE_MS = 10_000;

export type InboxConsumer = EphemeralReader;

/** A reader of DELIVERIES for `subject`, from stream sequence `startSeq`, no acks. */
export function openInboxConsumer(bus: ConsumerPort, subject: string, startSeq: number): Promise<InboxConsumer> {
  return bus.openEphemeral(STREAMS.deliveries, {
    filterSubject: subject,
    startSeq: Math.max(1, startSeq),
    inactiveMs: INBOX_CONSUMER_IDLE_MS,
  });
}
