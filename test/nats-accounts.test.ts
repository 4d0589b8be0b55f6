/**
 * Issue 20, item 1: the agencies' NATS users live outside the hub's account.
 *
 * nats-server 2.9 checks a request's subject against the publisher's
 * permissions, not its reply subject. An agency's permitted pull request
 * `$JS.API.CONSUMER.MSG.NEXT.DELIVERIES.inbox-<agency>` with the reply subject
 * set to a Liaison subject made JetStream store its `404 No Messages` status
 * answer there when agencies shared the hub's account. With the config that
 * `liaison nats creds` generates (the hub's account holds JetStream; each
 * agency's account imports only its own consumer's services), on a real
 * nats-server with a gateway running against it: no such answer reaches any
 * stream or KV bucket, the gateway keeps serving, the agency still pulls and
 * acks its own delivery, and it cannot publish to those subjects, read another
 * agency's consumer or create consumers.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, connect, Events, type JetStreamManager, type NatsConnection } from 'nats';
import { run, type Io } from '../broker/cli/liaison.js';
import { ensureDemoNetwork } from '../broker/demo/demo-network.js';
import { ensureAgencyConsumers } from '../broker/nats/agency-consumers.js';
import { prepareLocalNats } from '../broker/nats/creds-files.js';
import { startLocalNats } from '../broker/nats/local-server.js';
import { STREAMS } from '../broker/nats/streams.js';
import { RegistrySnapshot, type RegistrySeed } from '../broker/registry/model.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { natsServerBin } from './helpers/nats.js';
import { outcome, waitFor } from './helpers/wait.js';

interface Creds {
  user: string;
  password: string;
  inbox_prefix: string;
  /** Absent before the accounts layout: the agency's client used the default $JS.API. */
  js_api_prefix?: string;
  durable: string;
}

/** NATS subject matching: `*` one token, `>` the rest. */
function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** Every stream's message count and last sequence. */
async function streamStates(
  jsm: JetStreamManager,
): Promise<Record<string, { messages: number; last_seq: number; subjects: string[] }>> {
  const out: Record<string, { messages: number; last_seq: number; subjects: string[] }> = {};
  for (const s of await jsm.streams.list().next())
    out[s.config.name] = { messages: s.state.messages, last_seq: s.state.last_seq, subjects: s.config.subjects ?? [] };
  return out;
}

t.test(
  'an agency aims JetStream answers at Liaison subjects: nothing is stored, the gateway keeps serving',
  async (t) => {
    const bin = natsServerBin();
    const dir = mkdtempSync(join(tmpdir(), 'liaison-nats-accounts-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');
    const { seedFile } = await ensureDemoNetwork(dataDir);
    const credsDir = join(dir, 'creds');
    const io = { stdout: '', stderr: '' };
    const sink: Io = { out: (s) => void (io.stdout += s), err: (s) => void (io.stderr += s) };
    t.equal(await run(['nats', 'creds', '--registry', seedFile, '--out', credsDir], sink), 0, io.stderr);
    const broker = JSON.parse(readFileSync(join(credsDir, 'liaison-broker.json'), 'utf8')) as {
      user: string;
      password: string;
    };
    const th = JSON.parse(readFileSync(join(credsDir, 'agencies', 'th-customs.json'), 'utf8')) as Creds;
    const cn = JSON.parse(readFileSync(join(credsDir, 'agencies', 'cn-customs.json'), 'utf8')) as Creds;

    const conf = join(dir, 'nats-server.conf');
    writeFileSync(conf, `jetstream { store_dir: ${JSON.stringify(join(dir, 'store'))} }\ninclude "creds/auth.conf"\n`);
    const server = await startLocalNats({
      bin,
      storeDir: join(dir, 'store'),
      args: ['-c', conf],
      readyAuth: { user: broker.user, pass: broker.password },
      jetstreamInConfig: true,
    });
    t.teardown(() => server.stop());

    const g = await startTestGateway(
      t,
      server.url,
      { natsUser: broker.user, natsPasswordFile: join(credsDir, 'liaison-broker.password') },
      { dataDir },
    );
    const jsm = g.gw.bus.jsm;
    const seed = JSON.parse(readFileSync(seedFile, 'utf8')) as RegistrySeed;
    await ensureAgencyConsumers(jsm, RegistrySnapshot.fromSeed(seed));

    const conns: NatsConnection[] = [];
    t.teardown(async () => {
      for (const c of conns) await c.close().catch(() => undefined);
    });
    const anc = await connect({
      servers: server.url,
      user: th.user,
      pass: th.password,
      inboxPrefix: th.inbox_prefix,
      reconnect: false,
      timeout: 3000,
    });
    conns.push(anc);
    const errors: string[] = [];
    void (async () => {
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the status data, as text
      for await (const s of anc.status()) if (s.type === Events.Error) errors.push(String(s.data));
    })();

    // Every Liaison bucket (KV_<bucket> streams) and every other stream's subjects.
    const before = await streamStates(jsm);
    const buckets = Object.keys(before)
      .filter((n) => n.startsWith('KV_'))
      .map((n) => n.slice(3));
    t.ok(buckets.includes('registry'), `the KV buckets: ${buckets.join(', ')}`);
    const targets = [
      ...buckets.map((b) => `$KV.${b}.x`),
      'log.notice',
      'checkpoints',
      'notices.op.vn.seizure-report',
      `deliveries.${cn.user}.op.vn`,
      `acks.${randomUUID()}.th-customs`,
      'registry-events.x',
      'deadletter.webhook.x',
    ];
    // Each target is a subject some stream stores (the attack would reach it in the hub's account).
    for (const subject of targets)
      t.ok(
        Object.values(before).some((s) => s.subjects.some((p) => subjectMatches(p, subject))),
        `${subject} is a stored subject`,
      );

    // The attack: the agency's own, permitted pull request, its reply subject a Liaison subject.
    const api = th.js_api_prefix ?? '$JS.API';
    const pull = `${api}.CONSUMER.MSG.NEXT.${STREAMS.deliveries}.${th.durable}`;
    for (const reply of targets) {
      // The hub's own subject (refused by the agency's permissions in the accounts layout), and the agency's.
      anc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${STREAMS.deliveries}.${th.durable}`,
        new TextEncoder().encode(JSON.stringify({ batch: 1, no_wait: true })),
        { reply },
      );
      anc.publish(pull, new TextEncoder().encode(JSON.stringify({ batch: 1, no_wait: true })), { reply });
      anc.publish(pull, new TextEncoder().encode(JSON.stringify({ batch: 1, expires: 200_000_000 })), { reply });
      anc.publish(`${api}.CONSUMER.INFO.${STREAMS.deliveries}.${th.durable}`, new Uint8Array(), { reply });
    }
    await anc.flush();
    await new Promise((r) => setTimeout(r, 1000)); // the expires of the second pull and the answers' way back

    for (const subject of targets) {
      const holder = Object.entries(before).find(([, s]) =>
        s.subjects.some((p) => subjectMatches(p, subject)),
      )?.[0] as string;
      // The answers are empty (a status: 404 No Messages, 408 Request Timeout) or a consumer info; CHECKPOINTS holds the checkpointer's own.
      const got = await jsm.streams.getMessage(holder, { last_by_subj: subject }).then(
        (m) =>
          m.data.length === 0 ||
          m.header?.get('Status') ||
          new TextDecoder().decode(m.data).includes('consumer_info_response')
            ? `an answer at seq ${m.seq}`
            : 'a Liaison message',
        (e: Error) => e.message,
      );
      t.match(
        got,
        subject === 'checkpoints' ? /no message found|a Liaison message/i : /no message found/i,
        `no answer stored on ${subject} (${holder}): ${got}`,
      );
    }
    const after = await streamStates(jsm);
    for (const name of [
      STREAMS.notices,
      STREAMS.log,
      STREAMS.deliveries,
      STREAMS.deadletter,
      STREAMS.acks,
      STREAMS.registryEvents,
      'KV_registry',
    ]) {
      t.same(after[name], before[name], `${name}: message count and last seq unchanged`);
    }

    // Direct publishes to those subjects are refused (and would land in the agency's own account anyway).
    for (const subject of targets) {
      const r = await outcome(anc.request(subject, new TextEncoder().encode('{}'), { timeout: 1500 }));
      t.match(r, /permissions violation for publish/i, `cannot publish to ${subject}`);
    }
    // Another agency's consumer, consumer creation, stream access: refused.
    const refusals: [string, string, unknown][] = [...new Set(['$JS.API', api])].flatMap(
      (p): [string, string, unknown][] => [
        [
          `cn-customs' pull (${p})`,
          `${p}.CONSUMER.MSG.NEXT.${STREAMS.deliveries}.${cn.durable}`,
          { batch: 1, no_wait: true },
        ],
        [`cn-customs' consumer info (${p})`, `${p}.CONSUMER.INFO.${STREAMS.deliveries}.${cn.durable}`, {}],
        [
          `a consumer create (${p})`,
          `${p}.CONSUMER.CREATE.${STREAMS.deliveries}`,
          { stream_name: STREAMS.deliveries, config: { ack_policy: 'none' } },
        ],
        [
          `a durable create (${p})`,
          `${p}.CONSUMER.DURABLE.CREATE.${STREAMS.deliveries}.steal`,
          {
            stream_name: STREAMS.deliveries,
            config: { durable_name: 'steal', filter_subject: `deliveries.${cn.user}.*.*`, ack_policy: 'explicit' },
          },
        ],
        [`a LOG message (${p})`, `${p}.STREAM.MSG.GET.${STREAMS.log}`, { seq: 1 }],
        [`stream info (${p})`, `${p}.STREAM.INFO.${STREAMS.deliveries}`, {}],
      ],
    );
    for (const [what, subject, body] of refusals) {
      const r = await outcome(anc.request(subject, new TextEncoder().encode(JSON.stringify(body)), { timeout: 1500 }));
      t.match(r, /permissions violation for publish/i, `refused: ${what}`);
    }
    const ajsm = await anc.jetstreamManager({ checkAPI: false, apiPrefix: api });
    t.match(
      await outcome(
        ajsm.consumers.add(STREAMS.deliveries, {
          durable_name: 'steal',
          filter_subject: `deliveries.${cn.user}.*.*`,
          ack_policy: AckPolicy.Explicit,
        }),
      ),
      /permissions violation/i,
      'cannot create a consumer',
    );
    t.same(
      (await jsm.consumers.list(STREAMS.deliveries).next())
        .map((c) => c.name)
        .filter((n) => !n.startsWith('inbox-'))
        .filter((n) => n === 'steal'),
      [],
      'no consumer was created',
    );

    // The gateway keeps serving: a notice to th-customs is accepted and th-customs pulls and acks it through NATS.
    const res = await g.post(
      (
        await g.seal(
          sampleNotice('seizure-report', {
            origin: { country: 'VN', agency: 'vn-customs' },
            addressees: ['th-customs'],
          }),
          'vn-customs',
        )
      ).jwe,
    );
    t.equal(res.status, 202, `a notice is accepted (${String(res.json.code ?? '')})`);
    await waitFor(
      async () => ((await jsm.consumers.info(STREAMS.deliveries, th.durable)).num_pending === 1 ? true : undefined),
      "th-customs' delivery",
    );
    const consumer = await anc.jetstream({ apiPrefix: api }).consumers.get(STREAMS.deliveries, th.durable);
    t.equal((await consumer.info()).name, th.durable, 'consumer info through the import');
    const got: string[] = [];
    for await (const m of await consumer.fetch({ max_messages: 5, expires: 1500 })) {
      got.push(m.subject);
      await m.ackAck({ timeout: 3000 });
    }
    t.same(got, ['deliveries.th-customs.mekong-dragon-6.VN'], 'th-customs pulled its own delivery through NATS');
    const info = await jsm.consumers.info(STREAMS.deliveries, th.durable);
    t.equal(info.num_ack_pending, 0, 'its ack reached the consumer');
    t.equal(info.num_pending, 0);
    t.equal(
      (await jsm.consumers.info(STREAMS.deliveries, cn.durable)).delivered.stream_seq,
      0,
      "cn-customs' consumer delivered nothing",
    );
    t.equal(anc.isClosed(), false, "th-customs' connection survives its refused attempts");
    t.ok(
      errors.every((e) => /permissions.violation/i.test(e)),
      `only permission errors: ${errors.join('; ')}`,
    );
  },
);

t.test("the local nats-server's files: password and port kept across starts, a taken port replaced", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'liaison-nats-local-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const { seedFile } = await ensureDemoNetwork(dataDir);
  const seed = RegistrySnapshot.fromSeed(JSON.parse(readFileSync(seedFile, 'utf8')) as RegistrySeed);
  const first = await prepareLocalNats(dataDir, seed, {
    host: '127.0.0.1',
    pickPort: async (previous) => previous ?? 40001,
  });
  t.equal(first.createdCreds, true);
  t.equal(first.url, 'nats://127.0.0.1:40001');
  t.match(
    readFileSync(first.config, 'utf8'),
    /listen: "127\.0\.0\.1:40001"\njetstream \{ store_dir: ".*\/nats" \}\ninclude "creds\/auth\.conf"\n/,
  );
  const again = await prepareLocalNats(dataDir, null, {
    host: '127.0.0.1',
    pickPort: async (previous) => previous ?? 40002,
  });
  t.equal(again.createdCreds, false, 'the credentials of the first start are kept');
  t.equal(again.password, first.password, 'the broker password is kept');
  t.equal(again.port, 40001, 'the previous port is offered again');
  t.ok(
    existsSync(join(dataDir, 'nats', 'creds', 'agencies', 'th-customs.json')),
    "the seed's subscribing agencies have credentials",
  );
  const moved = await prepareLocalNats(dataDir, null, { host: '127.0.0.1', pickPort: async () => 40003 });
  t.equal(
    readFileSync(join(dataDir, 'nats', 'url'), 'utf8'),
    'nats://127.0.0.1:40003\n',
    'a new port is written for the CLI',
  );
  t.equal(moved.password, first.password);
});

t.test(
  "a data dir from before accounts: the local store moves to the hub's account, streams and messages kept",
  async (t) => {
    const bin = natsServerBin();
    const dataDir = mkdtempSync(join(tmpdir(), 'liaison-nats-migrate-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const storeDir = join(dataDir, 'nats');
    // As main.ts ran it before: -js -sd dataDir/nats, no accounts (the global account $G).
    const old = await startLocalNats({ bin, storeDir });
    const onc = await connect({ servers: old.url });
    const ojsm = await onc.jetstreamManager();
    await ojsm.streams.add({ name: STREAMS.log, subjects: ['log.*'] });
    await onc.jetstream().publish('log.notice', new TextEncoder().encode('entry-0'));
    await onc.close();
    await old.stop();
    t.ok(existsSync(join(storeDir, 'jetstream', '$G')), 'the old store is in $G');

    const local = await prepareLocalNats(dataDir, null, {
      host: '127.0.0.1',
      pickPort: async () => (await import('../broker/nats/local-server.js')).freePort(),
    });
    t.equal(local.migrated, true, 'moved');
    const server = await startLocalNats({
      bin,
      storeDir,
      port: local.port,
      configFile: local.config,
      readyAuth: { user: local.auth.natsUser, pass: local.password },
    });
    t.teardown(() => server.stop());
    const nc = await connect({ servers: local.url, user: local.auth.natsUser, pass: local.password });
    t.teardown(() => nc.close());
    const jsm = await nc.jetstreamManager();
    t.equal((await jsm.streams.info(STREAMS.log)).state.messages, 1, "LOG is in the hub's account with its entry");
    t.equal(new TextDecoder().decode((await jsm.streams.getMessage(STREAMS.log, { seq: 1 })).data), 'entry-0');
    t.equal(
      (await prepareLocalNats(dataDir, null, { host: '127.0.0.1', pickPort: async (p) => p as number })).migrated,
      false,
      'once',
    );
  },
);
