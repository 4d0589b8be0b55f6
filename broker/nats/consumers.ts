import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from 'nats';
import type { ConsumerPort } from '../core/consumer-port.js';
import { isNotFound } from './errors.js';

const ns = (ms: number) => ms * 1_000_000;

/** The ConsumerPort (core/consumer-port.ts) over JetStream; a JsMsg is handed on as it is, never copied. */
export function jetStreamConsumers(js: JetStreamClient, jsm: JetStreamManager): ConsumerPort {
  return {
    async openEphemeral(stream, { filterSubject, startSeq, inactiveMs }) {
      // Not a nats.js ordered consumer: those ignore inactive_threshold, and the server kept each one 300 s after the read.
      const info = await jsm.consumers.add(stream, {
        filter_subject: filterSubject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: startSeq,
        ack_policy: AckPolicy.None,
        inactive_threshold: ns(inactiveMs),
        mem_storage: true,
        num_replicas: 1,
      });
      let closed: Promise<void> | undefined;
      const close = () =>
        (closed ??= jsm.consumers.delete(stream, info.name).then(
          () => undefined,
          () => undefined,
        ));
      try {
        const consumer = await js.consumers.get(stream, info.name);
        return {
          name: info.name,
          fetch: ({ maxMessages, expiresMs }) => consumer.fetch({ max_messages: maxMessages, expires: expiresMs }),
          close,
        };
      } catch (e) {
        await close();
        throw e;
      }
    },
    async ensureDurable(stream, spec, { reconfigure }) {
      const want = { ack_wait: ns(spec.ackWaitMs), max_ack_pending: spec.maxAckPending };
      try {
        const info = await jsm.consumers.info(stream, spec.name);
        if (
          reconfigure &&
          (info.config.ack_wait !== want.ack_wait || info.config.max_ack_pending !== want.max_ack_pending)
        ) {
          await jsm.consumers.update(stream, spec.name, want);
        }
      } catch (e) {
        if (!isNotFound(e, 'consumer')) throw e;
        await jsm.consumers.add(stream, {
          durable_name: spec.name,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: spec.deliver === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
          ...(spec.filterSubject === undefined ? {} : { filter_subject: spec.filterSubject }),
          ...want,
        });
      }
    },
    async consume(stream, name, { maxMessages, expiresMs }) {
      const consumer = await js.consumers.get(stream, name);
      return consumer.consume({ max_messages: maxMessages, expires: expiresMs });
    },
    async orderedReader(stream, startSeq) {
      const consumer = await js.consumers.get(stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: startSeq,
      });
      return {
        fetch: ({ maxMessages, expiresMs }) => consumer.fetch({ max_messages: maxMessages, expires: expiresMs }),
      };
    },
  };
}
