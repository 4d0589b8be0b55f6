/**
 * Every inbox read (a page or an SSE stream) reads through a consumer on
 * DELIVERIES. It used to be a nats.js ordered consumer, which ignores
 * `inactive_threshold`: the server kept each one 300 s, so 800 reads left 800
 * consumers. Now the consumer is deleted when the read ends, and the
 * threshold the code asks for is the one the server holds.
 */
import t from 'tap';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { STREAMS } from '../broker/nats/streams.js';
import { INBOX_CONSUMER_IDLE_MS, openInboxConsumer } from '../broker/routing/inbox-consumer.js';
import { followInbox, readInbox } from '../broker/routing/inbox.js';
import type { JetStreamClient } from 'nats';
import type { NatsBus } from '../broker/nats/connection.js';
import { jetStreamConsumers } from '../broker/nats/consumers.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { inboxClients } from './helpers/inbox.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { webhook: false });
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as { port: number }).port}`;
const client = inboxClients(g, url);
const { jsm } = g.gw.bus;

const consumerCount = async () => (await jsm.streams.info(STREAMS.deliveries)).state.consumer_count;
const consumers = async () => (await jsm.consumers.list(STREAMS.deliveries).next()).map((c) => c.config);

// Something in th-customs' inbox, or a read answers from one lookup without any consumer.
const notice = sampleNotice('seizure-report', {
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['th-customs'],
});
const posted = await g.post((await g.seal(notice, 'vn-customs')).jwe);
if (posted.status !== 202) throw new Error(`post refused: ${posted.status}`);
await waitFor(
  async () => ((await client('th-customs').pull()).deliveries.length > 0 ? true : undefined),
  'the delivery',
);
const baseline = await consumerCount();

t.test('many inbox pages leave no consumer behind', async (t) => {
  let seen = 0;
  for (let i = 0; i < 40; i++) seen += (await client('th-customs').pull({ limit: 1 + (i % 3) })).deliveries.length;
  t.equal(seen, 40, 'each of 40 reads saw the delivery');
  t.equal(await consumerCount(), baseline, 'the consumer count is back to the baseline after 40 reads');
  t.same(await consumers(), [], 'no consumer is listed on DELIVERIES');
});

t.test('a read that fails half-way deletes its consumer too', async (t) => {
  // The consumer is made on the server; then every pull fails (a NATS fault between the two).
  const failingPulls: NatsBus = {
    ...g.gw.bus,
    openEphemeral: async (...a) => ({
      ...(await g.gw.bus.openEphemeral(...a)),
      fetch: async () => Promise.reject(new Error('pull failed')),
    }),
  };
  await t.rejects(readInbox(failingPulls, { agency: 'th-customs' }, 0, 10), { code: 'unavailable' }, 'a page: 503');
  t.equal(await consumerCount(), baseline, 'a page: back to the baseline');
  const follow = followInbox(failingPulls, { agency: 'th-customs' }, 0, new AbortController().signal);
  await t.rejects(follow.next(), /pull failed/, 'a stream: ended by the error');
  t.equal(await consumerCount(), baseline, 'a stream: back to the baseline');
  const noBinding: NatsBus = {
    ...g.gw.bus,
    ...jetStreamConsumers(
      { consumers: { get: async () => Promise.reject(new Error('bind failed')) } } as unknown as JetStreamClient,
      jsm,
    ),
  };
  await t.rejects(
    readInbox(noBinding, { agency: 'th-customs' }, 0, 10),
    { code: 'unavailable' },
    'made but not bound: 503',
  );
  t.equal(await consumerCount(), baseline, 'made but not bound: deleted at once');
});

t.test(
  'an SSE stream holds one consumer, with the threshold the code asks for, until the client closes it',
  async (t) => {
    const token = await makeClientAssertion('th-customs', g.creds('th-customs').signing, g.config.brokerId);
    const abort = new AbortController();
    const res = await fetch(`${url}/v1/inbox/stream`, {
      headers: { authorization: `Bearer ${token}` },
      signal: abort.signal,
    });
    t.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: delivery')) text += new TextDecoder().decode((await reader.read()).value);

    const open = await consumers();
    t.equal(open.length, 1, 'one consumer while the stream is open');
    t.match(
      open[0],
      {
        filter_subject: 'deliveries.th-customs.*.*',
        ack_policy: 'none',
        inactive_threshold: INBOX_CONSUMER_IDLE_MS * 1_000_000,
      },
      'the server holds the 10 s threshold',
    );
    t.notOk(open[0]?.durable_name, 'ephemeral');

    abort.abort();
    await reader.cancel().catch(() => undefined);
    // Well before the server's own threshold could have dropped it.
    await waitFor(
      async () => ((await consumerCount()) === baseline ? true : undefined),
      'the consumer to be deleted',
      INBOX_CONSUMER_IDLE_MS / 2,
    );
    t.pass('the client closing the stream deleted its consumer');
  },
);

t.test('a consumer whose delete is lost carries the inactivity threshold on the server', async (t) => {
  const read = await openInboxConsumer(g.gw.bus, 'deliveries.th-customs.*.*', 1);
  const info = await jsm.consumers.info(STREAMS.deliveries, read.name);
  t.equal(
    info.config.inactive_threshold,
    INBOX_CONSUMER_IDLE_MS * 1_000_000,
    'what the code asks is what the server keeps',
  );
  await read.close();
  await read.close();
  t.equal(await consumerCount(), baseline, 'closed once, closing again is harmless');
});
