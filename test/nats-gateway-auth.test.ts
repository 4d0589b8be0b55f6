/**
 * The gateway's own NATS credentials (natsUser + natsPassword / natsPasswordFile,
 * natsToken, natsCreds; env NATS_USER, NATS_PASSWORD, NATS_PASSWORD_FILE, ...),
 * on a real nats-server started with the authorization config that
 * `liaison nats creds` generates for the demo registry: the gateway connects as
 * the broker user and takes a notice end to end; a wrong password stops
 * start-up with a clear error that holds no secret; an agency user still
 * cannot publish to NOTICES, but reads its routed delivery from its consumer.
 */
import t from 'tap';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { run, type Io } from '../broker/cli/liaison.js';
import { Writable } from 'node:stream';
import { loadConfig } from '../broker/config/config.js';
import { createLogger } from '../broker/core/logger.js';
import { createGateway } from '../broker/gateway.js';
import { ensureDemoNetwork } from '../broker/demo/demo-network.js';
import { NatsAuthError, natsAuth, natsAuthFromEnv, redactServers } from '../broker/nats/connection.js';
import { startLocalNats } from '../broker/nats/local-server.js';
import { natsServerBin } from './helpers/nats.js';
import { STREAMS } from '../broker/nats/streams.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { waitFor } from './helpers/wait.js';

const capture = () => {
  const io = { stdout: '', stderr: '' };
  const sink: Io = { out: (s) => void (io.stdout += s), err: (s) => void (io.stderr += s) };
  return { io, sink };
};

/** Run with some environment variables set, restoring them after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

t.test('settings: one method, clear errors that name the setting and never the secret', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-nats-auth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secret = 's3cret-Value-Never-Shown';
  const errOf = (f: () => unknown) => {
    try {
      f();
      return '';
    } catch (e) {
      t.type(e, NatsAuthError);
      return (e as Error).message;
    }
  };
  t.equal(natsAuth({}).describe, 'no credentials');
  t.equal(natsAuth({ natsUser: 'liaison-broker', natsPassword: secret }).describe, 'user "liaison-broker"');
  t.match(
    errOf(() => natsAuth({ natsPassword: secret })),
    /NATS_PASSWORD \(config key "natsPassword"\): needs NATS_USER/,
  );
  t.match(
    errOf(() => natsAuth({ natsUser: 'u' })),
    /NATS_USER .*needs NATS_PASSWORD_FILE/,
  );
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, `${secret}\n`, { mode: 0o600 });
  t.match(
    errOf(() => natsAuth({ natsUser: 'u', natsPassword: secret, natsPasswordFile: pwFile })),
    /set one, not both/,
  );
  t.match(
    errOf(() => natsAuth({ natsUser: 'u', natsPassword: secret, natsToken: secret })),
    /not several/,
  );
  t.match(
    errOf(() => natsAuth({ natsToken: secret, natsCreds: pwFile })),
    /not several/,
  );
  const missing = errOf(() => natsAuth({ natsUser: 'u', natsPasswordFile: join(dir, 'nope') }));
  t.match(missing, /NATS_PASSWORD_FILE \(config key "natsPasswordFile"\): cannot read .*nope \(ENOENT\)/);
  writeFileSync(join(dir, 'two-lines'), 'a\nb\n');
  t.match(
    errOf(() => natsAuth({ natsUser: 'u', natsPasswordFile: join(dir, 'two-lines') })),
    /on one line/,
  );
  for (const m of [missing]) t.notMatch(m, secret);
  t.same(natsAuth({ natsUser: 'u', natsPasswordFile: pwFile }).looseFiles, [], 'a 0600 file is fine');
  chmodSync(pwFile, 0o644);
  t.same(
    natsAuth({ natsUser: 'u', natsPasswordFile: pwFile }).looseFiles,
    [pwFile],
    'a readable password file is flagged',
  );
  t.equal(redactServers('nats://u:p@h:4222,tls://x@y:1'), 'nats://h:4222,tls://y:1');

  // The gateway's config and the CLI read the same variables; the CLI also reads them from LIAISON_CONFIG.
  const cfg = loadConfig({ NATS_USER: 'liaison-broker', NATS_PASSWORD_FILE: pwFile, LIAISON_DATA_DIR: dir });
  t.equal(cfg.natsUser, 'liaison-broker');
  t.equal(cfg.natsPasswordFile, pwFile);
  t.equal(cfg.natsPassword, null);
  const cfgFile = join(dir, 'config.json');
  writeFileSync(cfgFile, JSON.stringify({ natsUser: 'from-file', natsPasswordFile: pwFile, port: 1 }));
  t.same(natsAuthFromEnv({ LIAISON_CONFIG: cfgFile }), {
    natsUser: 'from-file',
    natsPassword: null,
    natsPasswordFile: pwFile,
    natsToken: null,
    natsCreds: null,
  });
  t.equal(
    natsAuthFromEnv({ LIAISON_CONFIG: cfgFile, NATS_USER: 'from-env' }).natsUser,
    'from-env',
    'the environment wins',
  );
});

t.test('a real nats-server with the generated authorization config', async (t) => {
  const bin = natsServerBin();
  const dir = mkdtempSync(join(tmpdir(), 'liaison-nats-gw-auth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const { seedFile } = await ensureDemoNetwork(dataDir);
  const credsDir = join(dir, 'creds');
  const c = capture();
  t.equal(await run(['nats', 'creds', '--registry', seedFile, '--out', credsDir], c.sink), 0, c.io.stderr);
  t.match(c.io.stdout, /gateways: NATS_USER=liaison-broker NATS_PASSWORD_FILE=.*liaison-broker\.password/);
  const passwordFile = join(credsDir, 'liaison-broker.password');
  t.equal(statSync(passwordFile).mode & 0o777, 0o600, 'the password file is 0600');
  const broker = JSON.parse(readFileSync(join(credsDir, 'liaison-broker.json'), 'utf8')) as {
    user: string;
    password: string;
  };
  t.equal(readFileSync(passwordFile, 'utf8'), `${broker.password}\n`, 'the password file holds the broker password');
  const conf = readFileSync(join(credsDir, 'auth.conf'), 'utf8');
  t.match(
    conf,
    /# full rights in this account: the gateways .*\n\s+\{ user: "liaison-broker", password: "[^"]+" \}/,
    'the broker user: no permissions block, commented',
  );

  // JetStream in the config file, not only -js: nats-server 2.9 turns JetStream off when a reload (SIGHUP, below) finds no jetstream block.
  writeFileSync(
    join(dir, 'nats-server.conf'),
    `jetstream { store_dir: ${JSON.stringify(join(dir, 'store'))} }\ninclude "creds/auth.conf"\n`,
  );
  const server = await startLocalNats({
    bin,
    storeDir: join(dir, 'store'),
    args: ['-c', join(dir, 'nats-server.conf')],
    readyAuth: { user: broker.user, pass: broker.password },
    jetstreamInConfig: true,
  });
  t.teardown(() => server.stop());

  /** createGateway with these settings, expected to fail; its error and every log line it wrote. */
  const startFails = async (overrides: Record<string, unknown>) => {
    const lines: string[] = [];
    const logger = createLogger(
      'trace',
      new Writable({ write: (c: Buffer, _e, cb) => void (lines.push(c.toString('utf8')), cb()) }),
    );
    const config = loadConfig({}, { dataDir, natsUrl: server.url, ...overrides });
    const err = await createGateway({ config, logger, natsUrl: server.url }).then(
      async (gw) => {
        await gw.close();
        return null;
      },
      (e: Error) => e,
    );
    return { err, logs: lines.join('') };
  };

  await t.test('a wrong password: start-up fails, naming the user and the setting, with no secret', async (t) => {
    const wrong = 'wrong-password-xyzzy-0123456789';
    const wrongFile = join(dir, 'wrong.password');
    writeFileSync(wrongFile, `${wrong}\n`, { mode: 0o600 });
    for (const [overrides, setting] of [
      [{ natsUser: 'liaison-broker', natsPassword: wrong }, 'NATS_PASSWORD'],
      [{ natsUser: 'liaison-broker', natsPasswordFile: wrongFile }, 'NATS_PASSWORD_FILE'],
    ] as const) {
      const { err, logs } = await startFails(overrides);
      t.type(err, NatsAuthError, 'start-up fails');
      t.notMatch(logs, wrong, 'no secret in the log');
      t.match(
        err?.message,
        new RegExp(
          `^NATS at nats://127\\.0\\.0\\.1:\\d+ refused user "liaison-broker" \\(authorization violation\\); check NATS_USER and ${setting}$`,
        ),
      );
      t.notMatch(err?.message, wrong);
      t.notMatch(err?.message, broker.password);
    }
    const { err: anonymous } = await startFails({});
    t.match(
      anonymous?.message,
      /requires credentials \(authorization violation\); set NATS_USER with NATS_PASSWORD_FILE/,
    );
  });

  // The gateway connects as the broker user, with the password from the generated file.
  const g = await startTestGateway(
    t,
    server.url,
    { natsUser: broker.user, natsPasswordFile: passwordFile },
    { dataDir },
  );
  const notice = sampleNotice('seizure-report', {
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs'],
  });
  const res = await g.post((await g.seal(notice, 'vn-customs')).jwe);
  t.equal(res.status, 202, `accepted (${String(res.json.code ?? '')})`);
  t.same(res.json.recipients, ['th-customs']);
  t.equal((await g.gw.bus.jsm.streams.info(STREAMS.notices)).state.messages, 1, 'stored in NOTICES');
  await waitFor(
    async () => ((await g.gw.bus.jsm.streams.info(STREAMS.deliveries)).state.messages === 1 ? true : undefined),
    'the delivery',
  );
  t.pass('routed to DELIVERIES');

  // The operator creates the agencies' consumers with the same environment settings as the gateway.
  const consumers = capture();
  await withEnv(
    {
      NATS_USER: broker.user,
      NATS_PASSWORD_FILE: passwordFile,
      NATS_PASSWORD: undefined,
      NATS_TOKEN: undefined,
      NATS_CREDS: undefined,
      LIAISON_CONFIG: undefined,
    },
    async () => {
      t.equal(
        await run(['nats', 'consumers', '--nats', server.url, '--registry', seedFile], consumers.sink),
        0,
        consumers.io.stderr,
      );
    },
  );
  t.match(consumers.io.stdout, /created: .*inbox-th-customs/);
  const refusedCli = capture();
  await withEnv(
    {
      NATS_USER: broker.user,
      NATS_PASSWORD: 'nope-not-it',
      NATS_PASSWORD_FILE: undefined,
      NATS_TOKEN: undefined,
      NATS_CREDS: undefined,
      LIAISON_CONFIG: undefined,
    },
    async () => {
      t.equal(await run(['nats', 'consumers', '--nats', server.url, '--registry', seedFile], refusedCli.sink), 1);
    },
  );
  t.match(
    refusedCli.io.stderr,
    /^liaison nats consumers: NATS at nats:\/\/127\.0\.0\.1:\d+ refused user "liaison-broker" \(authorization violation\); check NATS_USER and NATS_PASSWORD\n$/,
  );
  t.notMatch(refusedCli.io.stderr, /nope-not-it/);

  // An agency user: reads its routed delivery from its own consumer, cannot publish to NOTICES.
  const th = JSON.parse(readFileSync(join(credsDir, 'agencies', 'th-customs.json'), 'utf8')) as {
    user: string;
    password: string;
    inbox_prefix: string;
    js_api_prefix: string;
    durable: string;
  };
  const conns: NatsConnection[] = [];
  t.teardown(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
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
  const m = await (
    await anc.jetstream({ apiPrefix: th.js_api_prefix }).consumers.get(STREAMS.deliveries, th.durable)
  ).next({ expires: 3000 });
  t.match(m?.subject, /^deliveries\.th-customs\.mekong-dragon-6\.VN$/, 'th-customs fetched its delivery over NATS');
  await m?.ackAck({ timeout: 3000 });
  const publish = await anc
    .jetstream({ apiPrefix: th.js_api_prefix })
    .publish('notices.mekong-dragon-6.TH.seizure-report', new TextEncoder().encode('{}'), { timeout: 2000 })
    .then(
      () => 'ok',
      (e: Error) => e.message,
    );
  t.match(publish, /permissions violation for publish/i, 'an agency user cannot publish to NOTICES');
  t.equal((await g.gw.bus.jsm.streams.info(STREAMS.notices)).state.messages, 1, 'NOTICES unchanged');

  // audit export, as the broker user from the environment.
  const archive = join(dir, 'archive.json');
  const exp = capture();
  await withEnv(
    {
      NATS_USER: broker.user,
      NATS_PASSWORD_FILE: passwordFile,
      NATS_PASSWORD: undefined,
      NATS_TOKEN: undefined,
      NATS_CREDS: undefined,
      LIAISON_CONFIG: undefined,
    },
    async () => {
      t.equal(
        await run(['audit', 'export', '--nats', server.url, '--data-dir', dataDir, '--out', archive], exp.sink),
        0,
        exp.io.stderr,
      );
    },
  );
  t.match(exp.io.stderr, /exported 1 entries/);

  // Rotation without a restart: new passwords in the files, the server reloads its config and
  // drops the gateway's connection (old password); the gateway reconnects with the re-read file.
  const rotated = capture();
  t.equal(
    await run(['nats', 'creds', '--registry', seedFile, '--out', credsDir, '--rotate'], rotated.sink),
    0,
    rotated.io.stderr,
  );
  const newPassword = readFileSync(passwordFile, 'utf8').trim();
  t.not(newPassword, broker.password, 'a new broker password');
  process.kill(server.pid, 'SIGHUP');
  await waitFor(
    () => (g.logLines.some((l) => l.includes('"event":"nats-disconnect"')) ? true : undefined),
    'the server to drop the old password',
  );
  await waitFor(
    () => (g.logLines.some((l) => l.includes('"event":"nats-reconnect"')) && g.gw.bus.isConnected() ? true : undefined),
    'the gateway to reconnect',
  );
  // Right after a reload JetStream may answer 503 for a moment (the gateway says Retry-After): retry the same envelope.
  const jwe = (
    await g.seal(
      sampleNotice('seizure-report', { origin: { country: 'VN', agency: 'vn-customs' }, addressees: ['th-customs'] }),
      'vn-customs',
    )
  ).jwe;
  const after = await waitFor(async () => {
    const r = await g.post(jwe);
    return r.status === 503 ? undefined : r;
  }, 'JetStream after the reload');
  t.equal(after.status, 202, 'accepted after the rotation, without a restart');
  // Once per connection at most: the gateway's own, and the background thread's (router, checkpointer), each reconnect.
  const authErrors = g.logLines.filter((l) => l.includes('"event":"nats-auth-error"'));
  t.ok(
    authErrors.filter((l) => !l.includes('"thread":"background"')).length <= 1,
    "an auth error while reconnecting is logged at most once by the gateway's connection",
  );
  t.ok(
    authErrors.filter((l) => l.includes('"thread":"background"')).length <= 1,
    "and at most once by the background thread's",
  );

  const logs = g.logLines.join('\n');
  for (const secret of [broker.password, newPassword]) t.notMatch(logs, secret, 'no password in any log line');
  t.notMatch(logs, /wrong-password-xyzzy/);
});
