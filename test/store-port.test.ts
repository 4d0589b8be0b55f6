/**
 * The StorePort over a real nats-server (broker/nats/store.ts, kv-bucket.ts):
 * what each call answers when something is not there (null), when a
 * conditional write loses (undefined / false), and that anything else is the
 * one `unavailable`, named after the call.
 */
import t from 'tap';
import { AckPolicy } from 'nats';
import { LiaisonError } from '../broker/core/errors.js';
import { createLogger } from '../broker/core/logger.js';
import type { KvRecord } from '../broker/core/store-port.js';
import { connectNats } from '../broker/nats/connection.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const bus = await connectNats({
  servers: nats.url,
  name: 'store-port-test',
  publishTimeoutMs: 2000,
  logger: createLogger('silent'),
  auth: {},
});
t.teardown(() => bus.close());
const enc = new TextEncoder();
const dec = new TextDecoder();

await bus.jsm.streams.add({ name: 'S', subjects: ['s.>'], duplicate_window: 60e9 });
for (const [subject, v] of [
  ['s.a', '1'],
  ['s.b', '2'],
  ['s.a', '3'],
  ['s.b', '4'],
] as const)
  await bus.publish(subject, enc.encode(v), {});

t.test('a bucket: null for nothing there, undefined or false for a lost conditional write', async (t) => {
  const kv = await bus.bucket('port-kv', { history: 5 });
  t.equal(await kv.get('k'), null, 'a key never written');
  const r1 = await kv.create('k', enc.encode('one'));
  t.type(r1, 'number', 'created');
  t.equal(await kv.create('k', enc.encode('two')), undefined, 'create loses to a value');
  t.equal(await kv.update('k', enc.encode('two'), r1! + 100), undefined, 'update loses to a newer revision');
  const r2 = await kv.update('k', enc.encode('two'), r1!);
  t.ok(r2 !== undefined && r2 > r1!, 'updated on the current revision');
  t.equal(dec.decode((await kv.get('k'))!.value), 'two');
  t.ok((await kv.put('k', enc.encode('three'))) > r2!, 'put writes unconditionally');

  t.equal(await kv.putIfNew('n', enc.encode('x')), true, 'putIfNew on a key never written');
  t.equal(await kv.putIfNew('n', enc.encode('y')), false, 'putIfNew on a written key');
  await (await bus.kv('port-kv')).delete('n');
  t.equal(await kv.putIfNew('n', enc.encode('z')), false, 'a delete marker counts as written');
  t.equal((await kv.get('n'))?.operation, 'DEL', 'get answers the marker');
  t.type(await kv.create('n', enc.encode('z')), 'number', 'create writes over a delete marker');

  const keys: string[] = [];
  for await (const k of await kv.keys()) keys.push(k);
  t.same(keys.sort(), ['k', 'n']);
  const history: string[] = [];
  for await (const h of await kv.history({ key: 'k' })) history.push(dec.decode(h.value));
  t.same(history, ['one', 'two', 'three'], 'every kept revision, oldest first');

  let replayed = false;
  const seen: KvRecord[] = [];
  const watch = await kv.watch({ key: 'k', initializedFn: () => (replayed = true) });
  const done = (async () => {
    for await (const e of watch) if (seen.push(e) === 2) break;
  })();
  await kv.put('k', enc.encode('four'));
  await done;
  watch.stop();
  t.ok(replayed, 'initializedFn once the current value is delivered');
  t.same(
    seen.map((e) => dec.decode(e.value)),
    ['three', 'four'],
    'the current value, then the change',
  );
});

t.test('a bucket whose putIfNew leaves with the publishes: the same answers', async (t) => {
  const kv = await bus.bucket('port-kv-batched', { history: 1, putIfNewWithPublishes: true });
  t.equal(await kv.putIfNew('n', enc.encode('x')), true);
  t.equal(await kv.putIfNew('n', enc.encode('y')), false);
  t.equal(dec.decode((await kv.get('n'))!.value), 'x', 'the first write stands');
});

t.test('a bucket bound but never made: its keys read as not there', async (t) => {
  const kv = await bus.bucket('no-such-bucket', { bindOnly: true });
  t.equal(await kv.get('k'), null);
});

t.test('deleting a message: true when it was there, false when it is not', async (t) => {
  await bus.jsm.streams.add({ name: 'D', subjects: ['d.>'] });
  const { seq } = await bus.publish('d.x', enc.encode('x'), {});
  t.equal(await bus.deleteMessage('D', seq), true, 'deleted');
  t.equal(await bus.getMessage('D', seq), null, 'gone');
  t.equal(await bus.deleteMessage('D', seq), false, 'already gone');
});

t.test('streams: messages by sequence and subject, stream and consumer state', async (t) => {
  t.equal((await bus.lastMessage('S', 's.a'))?.seq, 3, 'the last on a subject');
  t.equal(await bus.lastMessage('S', 's.none'), null, 'none on a subject');
  t.equal(await bus.lastMessage('NOPE', 's.a'), null, 'no such stream');
  t.equal((await bus.nextMessage('S', 2, 's.a'))?.seq, 3, 'the next on a subject');
  t.equal((await bus.nextMessage('S', 1, 's.*'))?.seq, 1, 'at the sequence itself, with a wildcard');
  t.equal(await bus.nextMessage('S', 4, 's.a'), null, 'none after');
  const m = await bus.lastMessage('S', 's.b');
  t.equal(m?.subject, 's.b');
  t.equal(dec.decode(m!.data), '4');

  t.equal(await bus.streamInfo('NOPE'), null, 'no such stream');
  const info = await bus.streamInfo('S');
  t.match(info, { firstSeq: 1, lastSeq: 4, messages: 4, duplicateWindowMs: 60_000 });
  t.ok(Number.isFinite(Date.parse(info!.lastTime)), 'when the last message was stored');

  t.equal(await bus.consumerInfo('S', 'nobody'), null, 'no such consumer');
  await bus.jsm.consumers.add('S', { durable_name: 'reader', ack_policy: AckPolicy.Explicit });
  t.same(await bus.consumerInfo('S', 'reader'), { pending: 4, ackPending: 0 });
});

t.test('a failure is unavailable, named after the call', async (t) => {
  const other = await connectNats({
    servers: nats.url,
    name: 'store-port-closed',
    publishTimeoutMs: 500,
    logger: createLogger('silent'),
    auth: {},
  });
  const kv = await other.bucket('port-kv');
  await other.nc.close();
  const failures: [string, () => Promise<unknown>, RegExp][] = [
    ['get', () => kv.get('k'), /^port-kv get: /],
    ['get, named', () => kv.get('k', 'my read'), /^my read: /],
    ['put', () => kv.put('k', enc.encode('x')), /^port-kv put: /],
    ['create', () => kv.create('x', enc.encode('x')), /^port-kv create: /],
    ['putIfNew, named', () => kv.putIfNew('x', enc.encode('x'), 'jti store'), /^jti store: /],
    ['update', () => kv.update('k', enc.encode('x'), 1), /^port-kv update: /],
    ['keys', () => kv.keys(), /^port-kv keys: /],
    ['history', () => kv.history({ key: 'k' }), /^port-kv history: /],
    ['watch', () => kv.watch({ key: 'k' }), /^port-kv watch: /],
    ['bucket', () => other.bucket('port-kv'), /^kv: not connected/],
    ['lastMessage', () => other.lastMessage('S', 's.a', 'acks lookup'), /^get: not connected/],
    ['streamInfo', () => other.streamInfo('S'), /^stream info: not connected/],
    ['consumerInfo', () => other.consumerInfo('S', 'reader'), /^consumer info: not connected/],
    ['deleteMessage', () => other.deleteMessage('S', 1), /^delete: not connected/],
  ];
  for (const [what, call, message] of failures) {
    const e = await call().then(
      () => undefined,
      (x: unknown) => x,
    );
    t.ok(e instanceof LiaisonError && e.code === 'unavailable', `${what}: unavailable`);
    t.match((e as Error | undefined)?.message, message, `${what}: named`);
  }
});

t.test('a failure past the guard keeps the caller’s name', async (t) => {
  const jsm = bus.jsm;
  // Saved to be put back on the same objects after the test: never called unbound.
  /* eslint-disable @typescript-eslint/unbound-method */
  const real = {
    get: jsm.streams.getMessage,
    info: jsm.streams.info,
    consumer: jsm.consumers.info,
    del: jsm.streams.deleteMessage,
  };
  /* eslint-enable @typescript-eslint/unbound-method */
  const boom = () => Promise.reject(new Error('TIMEOUT'));
  jsm.streams.getMessage = boom;
  jsm.streams.deleteMessage = boom;
  jsm.streams.info = boom;
  jsm.consumers.info = boom;
  try {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => bus.lastMessage('S', 's.a', 'acks lookup'), /^acks lookup: TIMEOUT/],
      [() => bus.lastMessage('S', 's.a'), /^get S last s\.a: TIMEOUT/],
      [() => bus.nextMessage('S', 1, 's.a', 'acks list'), /^acks list: TIMEOUT/],
      [() => bus.nextMessage('S', 1, 's.a'), /^get S s\.a from #1: TIMEOUT/],
      [() => bus.streamInfo('S'), /^S info: TIMEOUT/],
      [() => bus.consumerInfo('S', 'reader'), /^S consumer reader info: TIMEOUT/],
      [() => bus.deleteMessage('S', 1, 'deadletter delete'), /^deadletter delete: TIMEOUT/],
      [() => bus.deleteMessage('S', 1), /^delete S#1: TIMEOUT/],
    ];
    for (const [call, message] of cases) {
      const e = await call().then(
        () => undefined,
        (x: unknown) => x,
      );
      t.ok(e instanceof LiaisonError && e.code === 'unavailable');
      t.match((e as Error | undefined)?.message, message);
    }
  } finally {
    jsm.streams.getMessage = real.get;
    jsm.streams.info = real.info;
    jsm.consumers.info = real.consumer;
    jsm.streams.deleteMessage = real.del;
  }
});
