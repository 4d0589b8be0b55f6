/** broker/nats/errors.ts and next-message.ts over the errors a real nats-server gives through nats.js. */
import t from 'tap';
import { connect } from 'nats';
import { LiaisonError } from '../broker/core/errors.js';
import { isNotFound, isWrongLastSequence, natsUnavailable } from '../broker/nats/errors.js';
import { getNextMessage } from '../broker/nats/next-message.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const nc = await connect({ servers: nats.url });
t.teardown(() => nc.close());
const jsm = await nc.jetstreamManager();
const js = nc.jetstream();
const enc = new TextEncoder();

await jsm.streams.add({ name: 'S', subjects: ['s.>'] });
await js.publish('s.a', enc.encode('1'));
await js.publish('s.b', enc.encode('2'));
await js.publish('s.a', enc.encode('3'));
await js.publish('s.b', enc.encode('4'));
const kv = await js.views.kv('bucket');
await kv.put('held', enc.encode('x'));

/** What `call` rejects with (the test fails when it resolves). */
async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  throw new Error('the call did not fail');
}

t.test('isNotFound: what JetStream says is not there', async (t) => {
  await jsm.streams.deleteMessage('S', 2);
  const cases = {
    'a missing stream (info)': await failure(() => jsm.streams.info('NOPE')),
    'a missing stream (get)': await failure(() => jsm.streams.getMessage('NOPE', { seq: 1 })),
    'a sequence past the end': await failure(() => jsm.streams.getMessage('S', { seq: 99 })),
    'a deleted message': await failure(() => jsm.streams.getMessage('S', { seq: 2 })),
    'a missing KV key, read as its last message': await failure(() =>
      jsm.streams.getMessage('KV_bucket', { last_by_subj: '$KV.bucket.missing' }),
    ),
    'a missing consumer (info)': await failure(() => jsm.consumers.info('S', 'nope')),
    'a missing consumer (delete)': await failure(() => jsm.consumers.delete('S', 'nope')),
    'no next message on a subject': await failure(() => getNextMessage(jsm, 'S', 5, 's.a')),
  };
  for (const [what, e] of Object.entries(cases)) t.ok(isNotFound(e), what);
  t.ok(isNotFound(cases['a missing stream (info)'], 'stream'), 'a missing stream is a missing stream');
  t.notOk(isNotFound(cases['a missing stream (info)'], 'consumer'), 'but not a missing consumer');
  t.ok(isNotFound(cases['a missing consumer (info)'], 'consumer'), 'a missing consumer is a missing consumer');
  t.notOk(isNotFound(cases['a missing consumer (info)'], 'message'), 'but not a missing message');
  t.ok(isNotFound(cases['a deleted message'], 'message'), 'a deleted message is a missing message');
  t.notOk(isNotFound(cases['a deleted message'], 'stream'), 'but not a missing stream');
  t.equal(await kv.get('missing'), null, 'a missing key through the KV API is null, not an error');
  // Translated once already (connection.ts): the message still says what was not there.
  t.ok(isNotFound(natsUnavailable(cases['a missing stream (get)'], 'kv x'), 'stream'), 'a translated missing stream');
});

t.test('isNotFound: anything else is not', async (t) => {
  const exists = await failure(() => kv.create('held', enc.encode('y')));
  t.notOk(isNotFound(exists), 'a create over a held key (wrong last sequence)');
  const noStream = await failure(() => js.publish('nobody.stores.this', enc.encode('x'), { timeout: 500 }));
  t.notOk(isNotFound(noStream), 'a publish no stream takes (503 no responders)');
  const sub = nc.subscribe('nobody.answers');
  const timeout = await failure(() => nc.request('nobody.answers', new Uint8Array(0), { timeout: 50, noMux: true }));
  sub.unsubscribe();
  t.notOk(isNotFound(timeout), 'a timeout');
  /* eslint-disable @typescript-eslint/no-base-to-string -- a label for each junk value */
  for (const junk of [undefined, null, 'stream not found', 404, {}])
    t.notOk(isNotFound(junk), `not an error: ${String(junk)}`);
  /* eslint-enable @typescript-eslint/no-base-to-string */
  // Another JetStream 404 (a pull that found nothing says 404 No Messages): not there, though none of the three kinds.
  const other404 = { name: 'NatsError', code: '404', message: 'No Messages' };
  t.ok(isNotFound(other404), 'a 404 of another kind');
  t.notOk(isNotFound(other404, 'message'), 'is not a missing stored message');
});

t.test('natsUnavailable: the one 503, with no Retry-After of its own', async (t) => {
  const sub = nc.subscribe('nobody.answers');
  const timeout = await failure(() => nc.request('nobody.answers', new Uint8Array(0), { timeout: 50, noMux: true }));
  sub.unsubscribe();
  const e = natsUnavailable(timeout, 'inbox lookup');
  t.ok(e instanceof LiaisonError);
  t.equal(e.code, 'unavailable');
  t.equal(e.status, 503);
  t.equal(e.message, 'inbox lookup: TIMEOUT', 'says what failed and why');
  t.equal(e.cause, timeout, 'keeps the nats.js error');
  t.same(e.extras, {}, 'the HTTP edge adds the configured Retry-After');
  t.equal(e.publicDetail, undefined, 'nothing of the cause is shown to the client');
  const already = new LiaisonError('log-state-invalid', { detail: 'x' });
  t.equal(natsUnavailable(already, 'y'), already, 'a LiaisonError is kept as it is');
  t.equal(natsUnavailable('down', 'z').message, 'z: down', 'a thrown non-Error');
});

t.test('isWrongLastSequence: a conditional write lost to another writer', async (t) => {
  const created = await failure(() => kv.create('held', enc.encode('y')));
  t.ok(isWrongLastSequence(created), 'a KV create over a held key');
  const rev = (await kv.get('held'))!.revision;
  await kv.put('held', enc.encode('z'));
  const stale = await failure(() => kv.update('held', enc.encode('w'), rev));
  t.ok(isWrongLastSequence(stale), 'a KV update from a stale revision');
  const publish = await failure(() => js.publish('s.a', enc.encode('5'), { expect: { lastSubjectSequence: 1 } }));
  t.ok(isWrongLastSequence(publish), 'a publish expecting an older last sequence on its subject');
  t.ok(isWrongLastSequence(natsUnavailable(publish, 'publish s.a')), 'also once translated (its cause)');
  t.notOk(isWrongLastSequence(await failure(() => jsm.streams.info('NOPE'))), 'not a missing stream');
  t.notOk(isWrongLastSequence(natsUnavailable(new Error('not connected'), 'publish')), 'not a lost connection');
  for (const junk of [undefined, null, 'wrong last sequence'])
    t.notOk(isWrongLastSequence(junk), `not an error: ${String(junk)}`);
});

t.test('getNextMessage: the first message on a subject at or after a sequence', async (t) => {
  t.equal((await getNextMessage(jsm, 'S', 1, 's.a')).seq, 1, 'the message at the sequence itself');
  t.equal((await getNextMessage(jsm, 'S', 2, 's.a')).seq, 3, 'else the next one on the subject');
  t.equal(new TextDecoder().decode((await getNextMessage(jsm, 'S', 2, 's.b')).data), '4', 'past a deleted one');
  t.ok(isNotFound(await failure(() => getNextMessage(jsm, 'S', 4, 's.a')), 'message'), 'none: a missing message');
});
