/**
 * The ConsumerPort over a real nats-server (broker/nats/consumers.ts): the
 * consumers it makes are the ones the router, the webhook queues and the inbox
 * always made (ack policy, deliver policy, ack wait, max ack pending,
 * inactive threshold), and what they read.
 */
import t from 'tap';
import { createLogger } from '../broker/core/logger.js';
import { connectNats } from '../broker/nats/connection.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

const nats = await startTestNats(t);
const bus = await connectNats({
  servers: nats.url,
  name: 'consumer-port-test',
  publishTimeoutMs: 2000,
  logger: createLogger('silent'),
  auth: {},
});
t.teardown(() => bus.close());
const enc = new TextEncoder();
const dec = new TextDecoder();

await bus.jsm.streams.add({ name: 'C', subjects: ['c.>'] });
for (const [subject, v] of [
  ['c.a', '1'],
  ['c.b', '2'],
  ['c.a', '3'],
] as const)
  await bus.publish(subject, enc.encode(v), { headers: { h: v } });

t.test('an ordered reader: the stream in order from a sequence', async (t) => {
  const reader = await bus.orderedReader('C', 2);
  const got: string[] = [];
  for await (const m of await reader.fetch({ maxMessages: 2, expiresMs: 1000 }))
    got.push(`${m.seq}:${m.subject}:${dec.decode(m.data)}:${m.headers?.get('h')}`);
  t.same(got, ['2:c.b:2:2', '3:c.a:3:3']);
});

t.test('a durable consumer: made once, reconfigured only when asked', async (t) => {
  await bus.ensureDurable(
    'C',
    { name: 'all', deliver: 'all', ackWaitMs: 30_000, maxAckPending: 32 },
    { reconfigure: true },
  );
  t.match((await bus.jsm.consumers.info('C', 'all')).config, {
    durable_name: 'all',
    ack_policy: 'explicit',
    deliver_policy: 'all',
    ack_wait: 30e9,
    max_ack_pending: 32,
  });
  t.notOk((await bus.jsm.consumers.info('C', 'all')).config.filter_subject, 'no filter unless asked');
  await bus.ensureDurable(
    'C',
    { name: 'all', deliver: 'all', ackWaitMs: 5000, maxAckPending: 32 },
    { reconfigure: true },
  );
  t.equal((await bus.jsm.consumers.info('C', 'all')).config.ack_wait, 5e9, 'reconfigured');

  await bus.ensureDurable(
    'C',
    { name: 'new-a', filterSubject: 'c.a', deliver: 'new', ackWaitMs: 2000, maxAckPending: 1 },
    { reconfigure: false },
  );
  t.match((await bus.jsm.consumers.info('C', 'new-a')).config, {
    deliver_policy: 'new',
    filter_subject: 'c.a',
    ack_wait: 2e9,
    max_ack_pending: 1,
  });
  await bus.ensureDurable(
    'C',
    { name: 'new-a', filterSubject: 'c.a', deliver: 'new', ackWaitMs: 9000, maxAckPending: 1 },
    { reconfigure: false },
  );
  t.equal((await bus.jsm.consumers.info('C', 'new-a')).config.ack_wait, 2e9, 'left as it is');

  const iter = await bus.consume('C', 'all', { maxMessages: 3, expiresMs: 1000 });
  const seen: number[] = [];
  for await (const m of iter) {
    seen.push(m.seq);
    t.equal(m.info.redelivered, false);
    t.ok(m.info.timestampNanos > 0, 'when it was stored');
    if (m.seq === 1) await m.ackAck();
    else m.term();
    if (seen.length === 3) break;
  }
  iter.stop();
  t.same(seen, [1, 2, 3]);
  // term() gets no acknowledgement back: the server may still count those two as pending for a moment.
  const settled = async () => bus.consumerInfo('C', 'all');
  await waitFor(async () => ((await settled())?.ackPending === 0 ? true : undefined), 'the terms to settle').catch(
    () => {},
  );
  t.same(await settled(), { pending: 0, ackPending: 0 }, 'every one settled');
});

t.test('an ephemeral reader: the filter from a sequence, no acks, gone after close', async (t) => {
  const read = await bus.openEphemeral('C', { filterSubject: 'c.a', startSeq: 1, inactiveMs: 10_000 });
  t.match((await bus.jsm.consumers.info('C', read.name)).config, {
    filter_subject: 'c.a',
    ack_policy: 'none',
    deliver_policy: 'by_start_sequence',
    opt_start_seq: 1,
    inactive_threshold: 10e9,
    mem_storage: true,
    num_replicas: 1,
  });
  const got: [number, number][] = [];
  for await (const m of await read.fetch({ maxMessages: 2, expiresMs: 1000 })) got.push([m.seq, m.info.pending]);
  t.same(
    got,
    [
      [1, 1],
      [3, 0],
    ],
    'the matching messages, with how many are behind each',
  );
  await read.close();
  await read.close();
  t.equal(await bus.consumerInfo('C', read.name), null, 'deleted');
});
