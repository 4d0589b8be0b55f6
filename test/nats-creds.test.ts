/**
 * NATS-native subscribers with real NATS credentials: `liaison nats creds` makes
 * nats-server 2.9 users from the registry; on a real nats-server started with
 * them, agency A reads its own deliveries through its durable consumer and
 * nothing else.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, connect, headers, type NatsConnection } from 'nats';
import { run, type Io } from '../broker/cli/liaison.js';
import { startLocalNats } from '../broker/nats/local-server.js';
import { natsServerBin } from './helpers/nats.js';
import { ensureStreams, STREAMS } from '../broker/nats/streams.js';
import { ensureAgencyConsumers } from '../broker/nats/agency-consumers.js';
import { agencyPermissions, subscriberAuth } from '../broker/nats/subscriber-auth.js';
import { RegistrySnapshot, type Agency, type RegistrySeed } from '../broker/registry/model.js';
import { outcome } from './helpers/wait.js';

const agency = (id: string, roles: Agency['roles']): Agency => ({ id, country: 'VN', name: id, roles, keys: [] });
const seed: RegistrySeed = {
  agencies: [
    agency('a-customs', ['publish', 'subscribe']),
    agency('b-police', ['subscribe']),
    agency('c-publisher', ['publish']),
  ],
  operations: [],
};

const refused = (r: string) => r !== 'ok';

t.test('the generated config: one restricted user per subscribing agency, a full-rights broker user', async (t) => {
  const auth = subscriberAuth(RegistrySnapshot.fromSeed(seed), { password: () => 'pw' });
  t.same(
    auth.agencies.map((a) => a.agency),
    ['a-customs', 'b-police'],
    'only agencies with the subscribe role',
  );
  t.same(
    auth.users.map((u) => u.user),
    ['liaison-broker', 'a-customs', 'b-police'],
  );
  t.equal(auth.users[0]?.permissions, undefined, 'the broker has full rights');
  t.same(
    auth.users.map((u) => u.account),
    ['LIAISON', 'agency-a-customs', 'agency-b-police'],
    'each agency in an account of its own',
  );
  t.same(agencyPermissions('a-customs').publish.allow, [
    'liaison.API.CONSUMER.MSG.NEXT.DELIVERIES.inbox-a-customs',
    'liaison.API.CONSUMER.INFO.DELIVERIES.inbox-a-customs',
    '$JS.ACK.DELIVERIES.inbox-a-customs.>',
  ]);
  t.same(agencyPermissions('a-customs').subscribe.allow, ['_INBOX.a-customs.>']);
  t.throws(() => agencyPermissions('a.>'), /cannot name a NATS user/);
  t.match(auth.config, /accounts \{\n/);
  t.match(auth.config, /"LIAISON" \{\n\s+jetstream: enabled\n/, 'JetStream in the hub account');
  t.match(
    auth.config,
    /\{ service: "\$JS\.API\.CONSUMER\.MSG\.NEXT\.DELIVERIES\.inbox-a-customs", response_type: stream, accounts: \["agency-a-customs"\] \}/,
    'a pull export to that agency only',
  );
  t.match(
    auth.config,
    /\{ service: \{ account: "LIAISON", subject: "\$JS\.API\.CONSUMER\.INFO\.DELIVERIES\.inbox-b-police" \}, to: "liaison\.API\.CONSUMER\.INFO\.DELIVERIES\.inbox-b-police" \}/,
    'an import under the agency prefix',
  );
  t.equal(auth.agencies[0]?.js_api_prefix, 'liaison.API');
  const again = subscriberAuth(RegistrySnapshot.fromSeed(seed), { existing: { 'a-customs': 'kept' } });
  t.equal(again.agencies[0]?.password, 'kept', 'issued passwords are kept');
  t.not(again.agencies[1]?.password, again.broker.password, 'new passwords are random');
});

t.test('real nats-server with the generated users: A reads only its own deliveries', async (t) => {
  const bin = natsServerBin();
  const dir = mkdtempSync(join(tmpdir(), 'liaison-nats-creds-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const registryFile = join(dir, 'registry.json');
  writeFileSync(registryFile, JSON.stringify(seed));
  const credsDir = join(dir, 'creds');

  const io = { stdout: '', stderr: '' };
  const sink: Io = { out: (s) => void (io.stdout += s), err: (s) => void (io.stderr += s) };
  t.equal(await run(['nats', 'creds', '--registry', registryFile, '--out', credsDir], sink), 0, io.stderr);
  for (const f of ['auth.conf', 'liaison-broker.json', 'agencies/a-customs.json', 'agencies/b-police.json']) {
    t.equal(statSync(join(credsDir, f)).mode & 0o777, 0o600, `${f} is 0600`);
  }
  const broker = JSON.parse(readFileSync(join(credsDir, 'liaison-broker.json'), 'utf8')) as {
    user: string;
    password: string;
  };
  type Creds = { user: string; password: string; inbox_prefix: string; js_api_prefix: string; durable: string };
  const credsA = JSON.parse(readFileSync(join(credsDir, 'agencies', 'a-customs.json'), 'utf8')) as Creds;
  const credsB = JSON.parse(readFileSync(join(credsDir, 'agencies', 'b-police.json'), 'utf8')) as Creds;
  t.equal(credsA.durable, 'inbox-a-customs');
  // Re-running keeps the passwords (the server config and the agencies' files stay in step).
  t.equal(await run(['nats', 'creds', '--registry', registryFile, '--out', credsDir], sink), 0, io.stderr);
  t.equal(
    (JSON.parse(readFileSync(join(credsDir, 'agencies', 'a-customs.json'), 'utf8')) as { password: string }).password,
    credsA.password,
  );

  const conf = join(dir, 'nats-server.conf');
  // 2.9: an include path is relative to the including file; JetStream in the file (the hub's account enables it).
  writeFileSync(conf, `jetstream { store_dir: ${JSON.stringify(join(dir, 'store'))} }\ninclude "creds/auth.conf"\n`);
  const server = await startLocalNats({
    bin,
    storeDir: join(dir, 'store'),
    args: ['-c', conf],
    readyAuth: { user: broker.user, pass: broker.password },
    jetstreamInConfig: true,
  });
  t.teardown(() => server.stop());

  const conns: NatsConnection[] = [];
  t.teardown(async () => {
    for (const c of conns) await c.close().catch(() => undefined);
  });
  const open = async (o: { user?: string; pass?: string; inboxPrefix?: string }) => {
    const nc = await connect({ servers: server.url, reconnect: false, timeout: 3000, ...o });
    conns.push(nc);
    return nc;
  };

  t.ok(refused(await outcome(open({}))), 'an anonymous client is refused');
  t.ok(refused(await outcome(open({ user: credsA.user, pass: 'wrong' }))), 'a wrong password is refused');

  // The broker: streams, the agencies' durable consumers, one delivery for A and one for B.
  const bnc = await open({ user: broker.user, pass: broker.password });
  const jsm = await bnc.jetstreamManager();
  await ensureStreams(jsm, { duplicateWindowSeconds: 120, replicas: 1 });
  t.same(await ensureAgencyConsumers(jsm, RegistrySnapshot.fromSeed(seed)), ['inbox-a-customs', 'inbox-b-police']);
  t.same(await ensureAgencyConsumers(jsm, RegistrySnapshot.fromSeed(seed)), [], 'idempotent');
  const bjs = bnc.jetstream();
  const h = (id: string) => {
    const hs = headers();
    hs.set('Liaison-Notice-Id', id);
    return hs;
  };
  await bjs.publish('deliveries.a-customs.op-1.VN', new TextEncoder().encode('jwe-for-a'), {
    msgID: 'n1:a-customs',
    headers: h('n1'),
  });
  await bjs.publish('deliveries.b-police.op-1.VN', new TextEncoder().encode('jwe-for-b'), {
    msgID: 'n1:b-police',
    headers: h('n1'),
  });

  // A reads its own delivery through its durable consumer, and acks it.
  const anc = await open({ user: credsA.user, pass: credsA.password, inboxPrefix: credsA.inbox_prefix });
  const ajs = anc.jetstream({ apiPrefix: credsA.js_api_prefix });
  const consumer = await ajs.consumers.get(STREAMS.deliveries, credsA.durable);
  const got: string[] = [];
  const batch = await consumer.fetch({ max_messages: 5, expires: 1500 });
  for await (const m of batch) {
    got.push(`${m.subject} ${new TextDecoder().decode(m.data)}`);
    await m.ackAck({ timeout: 3000 });
  }
  t.same(got, ['deliveries.a-customs.op-1.VN jwe-for-a'], 'A fetched exactly its own delivery');
  t.equal(
    (await jsm.consumers.info(STREAMS.deliveries, credsA.durable)).num_ack_pending,
    0,
    "A's ack reached the server",
  );

  // A cannot subscribe to B's deliveries (nor to every inbox, nor NOTICES).
  for (const subject of ['deliveries.b-police.>', 'deliveries.>', '_INBOX.>', '_INBOX.b-police.>', 'notices.>']) {
    const sub = anc.subscribe(subject);
    const r = await outcome(
      (async () => {
        for await (const _ of sub) return;
      })(),
    );
    t.match(r, /permissions violation for subscription/i, `A cannot subscribe to ${subject}`);
  }

  // A cannot create a consumer on B's deliveries, an ephemeral consumer on DELIVERIES, or re-create its own wider.
  const ajsm = await anc.jetstreamManager({ checkAPI: false, apiPrefix: credsA.js_api_prefix });
  const attempts: [string, Promise<unknown>][] = [
    [
      'a durable consumer on deliveries.b-police.>',
      ajsm.consumers.add(STREAMS.deliveries, {
        durable_name: 'steal',
        filter_subject: 'deliveries.b-police.>',
        ack_policy: AckPolicy.Explicit,
      }),
    ],
    ['an ephemeral consumer on DELIVERIES', ajsm.consumers.add(STREAMS.deliveries, { ack_policy: AckPolicy.None })],
    [
      'an ephemeral consumer on its own deliveries',
      ajsm.consumers.add(STREAMS.deliveries, { filter_subject: 'deliveries.a-customs.>', ack_policy: AckPolicy.None }),
    ],
    [
      'its own durable with a wider filter',
      ajsm.consumers.add(STREAMS.deliveries, {
        durable_name: credsA.durable,
        filter_subject: 'deliveries.>',
        ack_policy: AckPolicy.Explicit,
      }),
    ],
    [
      'its own durable by the legacy API',
      anc.request(
        `$JS.API.CONSUMER.DURABLE.CREATE.DELIVERIES.${credsA.durable}`,
        JSON.stringify({ stream_name: 'DELIVERIES', config: { durable_name: credsA.durable, ack_policy: 'explicit' } }),
        { timeout: 2000 },
      ),
    ],
    [
      "a fetch from B's durable consumer",
      anc.request(
        `$JS.API.CONSUMER.MSG.NEXT.DELIVERIES.${credsB.durable}`,
        JSON.stringify({ batch: 1, expires: 500_000_000 }),
        { timeout: 2000 },
      ),
    ],
    ["B's consumer info", ajsm.consumers.info(STREAMS.deliveries, credsB.durable)],
    ['a message of LOG', anc.request('$JS.API.STREAM.MSG.GET.LOG', JSON.stringify({ seq: 1 }), { timeout: 2000 })],
    ['DELIVERIES stream info', ajsm.streams.info(STREAMS.deliveries)],
    [
      'a notice published to NOTICES',
      ajs.publish('notices.x.VN.seizure-report', new TextEncoder().encode('{}'), { timeout: 2000 }),
    ],
  ];
  for (const [what, p] of attempts) {
    const r = await outcome(p);
    t.match(r, /permissions violation for publish/i, `A cannot get ${what}: refused by the server at once`);
  }
  // Publishing without an ack is dropped by the server too.
  anc.publish('notices.x.VN.seizure-report', new TextEncoder().encode('{}'));
  await anc.flush();

  // The broker sees the effects: nothing changed but A's own consumer.
  t.same(
    (await jsm.consumers.list(STREAMS.deliveries).next()).map((c) => c.name).sort(),
    ['inbox-a-customs', 'inbox-b-police'],
    'no consumer was created by A',
  );
  const infoB = await jsm.consumers.info(STREAMS.deliveries, credsB.durable);
  t.equal(infoB.delivered.stream_seq, 0, "B's consumer delivered nothing to A");
  t.equal(infoB.num_pending, 1);
  t.equal((await jsm.streams.info(STREAMS.notices)).state.messages, 0, 'nothing reached NOTICES');
  t.equal(anc.isClosed(), false, "A's connection survives its refused attempts");

  // B reads its own delivery the same way.
  const b = await open({ user: credsB.user, pass: credsB.password, inboxPrefix: credsB.inbox_prefix });
  const bm = await (
    await b.jetstream({ apiPrefix: credsB.js_api_prefix }).consumers.get(STREAMS.deliveries, credsB.durable)
  ).next({ expires: 1500 });
  t.equal(bm?.subject, 'deliveries.b-police.op-1.VN');
  await bm?.ackAck({ timeout: 3000 });
});
