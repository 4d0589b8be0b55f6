/**
 * The delivery source and dead-letter sink of adapters/transport.ts on
 * JetStream: a queue is a durable pull consumer with explicit acks and one
 * message in flight (so a queue is delivered in order, and a failing receiver
 * holds up only its own), on an agency's deliveries (`deliveries.<agency>.*.*`,
 * from now on) or on the redelivery requests (`redeliver.webhook.*`, all of
 * them); the sink is the DEADLETTER stream (deadletter.ts).
 */
import type {
  DeadLetterSink,
  DeliveryMessage,
  DeliveryQueue,
  DeliverySource,
} from '../../adapters/transport/contract.js';
import type { AckableMessage, ConsumerPort } from '../core/consumer-port.js';
import { integrity, streamWhere } from '../core/integrity.js';
import { sleep } from '../core/sleep.js';
import type { StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { park, REDELIVER_SUBJECTS, WEBHOOK_HEADERS } from './deadletter.js';
import { toInboxDelivery } from './inbox.js';

/** A stored message as a DeliveryMessage (its stream's message kept for the dead-letter). */
function toDeliveryMessage(m: AckableMessage, stored: WeakMap<DeliveryMessage, AckableMessage>): DeliveryMessage {
  const redelivery = m.subject.startsWith('redeliver.');
  const agency = m.subject.split('.')[redelivery ? 2 : 1] as string;
  const cursor = redelivery ? Number(m.headers?.get(WEBHOOK_HEADERS.cursor) ?? 0) : m.seq;
  const at = { stream: redelivery ? STREAMS.deadletter : STREAMS.deliveries, seq: m.seq };
  const cursorOk = Number.isSafeInteger(cursor) && cursor > 0;
  if (!cursorOk)
    integrity.report(undefined, 'deadletter', streamWhere(at.stream, at.seq), 'redelivery cursor malformed');
  const message: DeliveryMessage = {
    agency,
    cursor,
    redelivery,
    // Not a delivery (junk: a finding is made): the transport terminates it, so it is neither retried forever nor blocks the ones behind it.
    delivery: cursorOk ? toInboxDelivery(cursor, m.data, m.headers, undefined, at) : null,
    ack: async () => void (await m.ackAck()),
    nak: (delayMs) => m.nak(delayMs),
    term: () => m.term(),
    working: () => m.working(),
  };
  stored.set(message, m);
  return message;
}

export function natsDeliveryQueues(bus: StorePort & ConsumerPort): {
  source: DeliverySource;
  deadLetters: DeadLetterSink;
} {
  const stored = new WeakMap<DeliveryMessage, AckableMessage>();

  // 'new' for an agency's deliveries: a newly registered webhook starts from now; the backlog stays readable by pull.
  const ensureConsumer = (stream: string, q: DeliveryQueue, filter: string, deliver: 'all' | 'new') =>
    bus.ensureDurable(
      stream,
      { name: q.consumer, filterSubject: filter, deliver, ackWaitMs: q.ackWaitMs, maxAckPending: 1 },
      { reconfigure: false },
    );

  const source: DeliverySource = {
    async consume(q, signal, handle, failed) {
      const [stream, filter, deliver] =
        'agency' in q
          ? [STREAMS.deliveries, `deliveries.${q.agency}.*.*`, 'new' as const]
          : [STREAMS.deadletter, REDELIVER_SUBJECTS, 'all' as const];
      while (!signal.aborted) {
        try {
          await ensureConsumer(stream, q, filter, deliver);
          const iter = await bus.consume(stream, q.consumer, { maxMessages: 1, expiresMs: 5000 });
          const stop = () => iter.stop();
          signal.addEventListener('abort', stop, { once: true });
          // An abort that came while the consumer was being set up has no listener to stop it.
          if (signal.aborted) stop();
          try {
            for await (const m of iter) {
              if (signal.aborted) break;
              await handle(toDeliveryMessage(m, stored));
            }
          } finally {
            signal.removeEventListener('abort', stop);
          }
        } catch (e) {
          if (signal.aborted) break;
          failed(e as Error);
          await sleep(500, signal);
        }
      }
    },
  };

  const deadLetters: DeadLetterSink = {
    park(message, failure) {
      const m = stored.get(message);
      if (!m) throw new Error('not a message of this delivery source');
      // Msg-Id per delivery and recipient (per request for a redelivery): a crash between park and ack parks it once.
      const key = message.redelivery ? `r${m.seq}` : `${message.cursor}:${message.agency}`;
      return park(bus, {
        agency: message.agency,
        key,
        data: m.data,
        headers: m.headers,
        cursor: message.cursor,
        ...failure,
      });
    },
  };

  return { source, deadLetters };
}
