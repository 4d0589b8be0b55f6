import t, { type Test as Tap } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { run, type Io } from '../broker/cli/liaison.js';
import { GATEWAY_NODE_ARGS } from '../broker/core/heap-limits.js';
import { repoRoot } from '../broker/core/paths.js';

/** Run the TypeScript sources the way tap loads them, so the child is covered too. */
const tsLoader = join(repoRoot, 'node_modules', '@tapjs', 'typescript', 'dist', 'esm', 'import.mjs');
const mainTs = join(repoRoot, 'broker', 'main.ts');
const cleanEnv = () => {
  const env = { ...process.env };
  delete env.NATS_URL;
  delete env.LIAISON_CONFIG;
  // No operations listener: its fixed default port would clash between gateways started at once (tls-start.test.ts checks it).
  env.LIAISON_OPS_PORT = '0';
  return env;
};

/** README's first command, `npm ci && npm start -- ARGS`: the ARGS it passes to the gateway. */
function readmeStartArgs(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const first = /```sh\n([^\n]*)/.exec(readme)?.[1]?.replace(/#.*$/, '').trim() ?? '';
  const m = /^npm ci && npm start(?: -- (.+))?$/.exec(first);
  if (!m) throw new Error(`README's first command is not "npm ci && npm start ...": ${first}`);
  return m[1]?.split(/\s+/) ?? [];
}

/** Whether the process `pid` has exited within `ms`. */
async function goneWithin(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
  }
  return false;
}

const capture = () => {
  const io = { stdout: '', stderr: '' };
  const sink: Io = { out: (s) => void (io.stdout += s), err: (s) => void (io.stderr += s) };
  return { io, sink };
};

/**
 * The gateway as package.json's start script runs it (with the gateway's V8 flags), from the TypeScript sources so that
 * it is covered, on a fresh data dir and a free port; resolves once its output matches `until` (or it exited, or 60 s).
 */
async function startGateway(t: Tap, args: string[], until: RegExp) {
  const dataDir = mkdtempSync(join(tmpdir(), 'liaison-start-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [...GATEWAY_NODE_ARGS, `--import=${tsLoader}`, mainTs, ...args], {
    cwd: repoRoot,
    env: { ...cleanEnv(), LIAISON_PORT: '0', LIAISON_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  const io = { out: '', err: '' };
  child.stdout.on('data', (d: Buffer) => (io.out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (io.err += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!until.test(io.out) && Date.now() < deadline && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 100));
  return { child, exited, dataDir, ...io };
}

t.test(
  "README's npm start: a broker with a demo network and a local nats-server; the printed first-notice command gets a receipt",
  async (t) => {
    // With the arguments README's first command gives npm start.
    const { child, exited, dataDir, out, err } = await startGateway(
      t,
      readmeStartArgs(),
      /Send a first notice:\n\s+npx liaison .*\n/,
    );
    t.match(out, /listening on http:\/\/127\.0\.0\.1:\d+/, err);
    t.notMatch(out + err, /heap-limit/, 'no warning about the heap limit: started with the V8 flags of npm start');
    const url = /listening on (http:\/\/[\d.:]+)/.exec(out)?.[1] as string;
    const natsPid = Number(/local nats-server pid (\d+)/.exec(out)?.[1]);
    t.ok(natsPid > 0, 'a local nats-server child was started');
    t.ok(
      existsSync(join(dataDir, 'demo', 'agencies', 'vn-customs.json')),
      "the demo agencies' keys are under the data dir",
    );
    t.ok(existsSync(join(dataDir, 'broker', 'keys.json')), "the broker's keys are under the data dir");
    t.ok(existsSync(join(dataDir, 'nats')), 'the NATS store is under the data dir');

    const printed = /npx liaison (.*)/.exec(out)?.[1]?.trim().split(/\s+/) as string[];
    t.same(printed.slice(0, 6), [
      'notice',
      'send',
      'docs/examples/notices/seizure-report.json',
      '--as',
      'vn-customs',
      '--stamp',
    ]);
    t.same(
      printed.slice(6, 8),
      ['--data-dir', dataDir],
      'the data dir is named when it is not ./data, so the command runs as printed',
    );
    const { io, sink } = capture();
    const code = await run(printed, sink);
    t.equal(code, 0, io.stderr);
    t.match(io.stdout, /accepted: notice [0-9a-f-]{36} at log index 0/);
    const receipt = /receipt: (\S+)/.exec(io.stdout)?.[1] as string;

    const v = capture();
    t.equal(await run(['receipt', 'verify', receipt, '--url', url], v.sink), 0, v.io.stderr);
    t.match(v.io.stdout, /receipt verifies: notice .* log index 0/);
    // README's third command: Thai customs reads it, decrypted and its origin signature checked (once the router has delivered it).
    let pulled = capture();
    for (
      const end = Date.now() + 20_000;
      !/1 delivery;/.test(pulled.io.stdout) && Date.now() < end;
      await new Promise((r) => setTimeout(r, 200))
    ) {
      pulled = capture();
      t.equal(
        await run(['inbox', 'pull', '--as', 'th-customs', '--url', url, '--data-dir', dataDir], pulled.sink),
        0,
        pulled.io.stderr,
      );
    }
    t.match(
      pulled.io.stdout,
      /mekong-dragon-6 from vn-customs \(VN\) TLP:AMBER seizure-report log 0\n\s+signature verified \(vn-customs-sig-1\)/,
    );
    t.match(pulled.io.stdout, /Hải quan cửa khẩu cảng Hải Phòng/, 'the Vietnamese summary, as sent');
    t.match(pulled.io.stdout, /\n1 delivery; continue with --after \d+\n$/);
    const tampered = receipt.slice(0, -4) + (receipt.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const bad = capture();
    t.equal(await run(['receipt', 'verify', tampered, '--url', url], bad.sink), 1);
    t.match(bad.io.stderr, /does NOT verify/);

    const j = capture();
    t.equal(
      await run(
        [
          'notice',
          'send',
          'docs/examples/notices/person-alert.json',
          '--as',
          'iq-police',
          '--stamp',
          '--url',
          url,
          '--data-dir',
          dataDir,
          '--json',
          '--curve',
          'P-256',
          '--alg',
          'ECDH-ES',
        ],
        j.sink,
      ),
      0,
      j.io.stderr + j.io.stdout,
    );
    const answer = JSON.parse(j.io.stdout);
    t.equal(answer.status, 202);
    const rf = join(dataDir, 'answer.json');
    writeFileSync(rf, j.io.stdout);
    const jwksFile = join(dataDir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify(await (await fetch(`${url}/v1/keys`)).json()));
    const v2 = capture();
    t.equal(await run(['receipt', 'verify', rf, '--keys', jwksFile, '--json'], v2.sink), 0, v2.io.stderr);
    t.equal(JSON.parse(v2.io.stdout).claims.notice_id, answer.notice_id);

    const refused = capture();
    t.equal(
      await run(
        [
          'notice',
          'send',
          'docs/examples/notices/seizure-report.json',
          '--as',
          'vn-customs',
          '--url',
          url,
          '--data-dir',
          dataDir,
        ],
        refused.sink,
      ),
      1,
      'an unstamped sample is refused as a replay',
    );
    t.match(refused.io.stdout, /refused \(400 replay\)/);

    await localNatsRequiresAuth(t, dataDir, natsPid, /\(NATS (nats:\/\/[\d.:]+)/.exec(out)?.[1] as string);

    child.kill('SIGTERM');
    t.equal(await exited, 0, 'clean shutdown');
    t.ok(await goneWithin(natsPid, 5000), 'the local nats-server is stopped on exit');
  },
);

/**
 * The nats-server child that main.ts starts requires authentication (issue 20, item 2): its config under
 * dataDir/nats (dir 0700, files 0600), nothing secret on its command line, anonymous clients and a wrong
 * password refused; the CLI reaches it with the data dir's broker credentials and URL; a demo agency reads
 * its delivery through its own account.
 */
async function localNatsRequiresAuth(t: Tap, dataDir: string, natsPid: number, url: string) {
  const natsDir = join(dataDir, 'nats');
  const cmdline = readFileSync(`/proc/${natsPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  t.same(cmdline.slice(1), ['-c', join(natsDir, 'nats-server.conf')], 'only -c FILE on the command line');
  t.match(url, /^nats:\/\/127\.0\.0\.1:\d+$/, 'the URL main.ts printed');
  const tryConnect = (o: { user?: string; pass?: string; inboxPrefix?: string }) =>
    connect({ servers: url, reconnect: false, timeout: 3000, ...o });
  for (const [what, o] of [
    ['an anonymous client', {}],
    ['a wrong password', { user: 'liaison-broker', pass: 'not-the-password' }],
  ] as const) {
    const r = await tryConnect(o).then(
      async (nc) => (await nc.close(), 'connected'),
      (e: Error) => e.message,
    );
    t.match(r, /authorization violation/i, `${what} is refused`);
  }
  const mode = (f: string) => statSync(join(natsDir, f)).mode & 0o777;
  t.equal(mode('.'), 0o700, 'dataDir/nats is 0700');
  t.equal(mode('creds'), 0o700, 'dataDir/nats/creds is 0700');
  t.equal(mode('creds/agencies'), 0o700, 'dataDir/nats/creds/agencies is 0700');
  for (const f of [
    'nats-server.conf',
    'url',
    'creds/auth.conf',
    'creds/liaison-broker.json',
    'creds/liaison-broker.password',
    'creds/agencies/th-customs.json',
  ])
    t.equal(mode(f), 0o600, `${f} is 0600`);
  const password = readFileSync(join(natsDir, 'creds', 'liaison-broker.password'), 'utf8').trim();
  t.ok(password.length >= 32, 'a strong broker password');
  t.notMatch(cmdline.join(' '), password, 'no password on the command line');
  t.equal(readFileSync(join(natsDir, 'url'), 'utf8').trim(), url, 'the URL for the CLI, in dataDir/nats/url');
  const nc = await tryConnect({ user: 'liaison-broker', pass: password });
  t.ok(
    (await (await nc.jetstreamManager()).streams.info('NOTICES')).state.messages >= 1,
    'the broker user reaches the streams',
  );
  await nc.close();

  // The CLI: no NATS settings in the environment, only the data dir.
  const env = {
    NATS_URL: undefined,
    NATS_USER: undefined,
    NATS_PASSWORD: undefined,
    NATS_PASSWORD_FILE: undefined,
    NATS_TOKEN: undefined,
    NATS_CREDS: undefined,
    LIAISON_CONFIG: undefined,
    LIAISON_DATA_DIR: dataDir,
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const setEnv = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  };
  setEnv(env);
  try {
    const c = capture();
    t.equal(await run(['nats', 'consumers', '--registry', join(dataDir, 'registry.json')], c.sink), 0, c.io.stderr);
    t.match(
      c.io.stdout,
      /created: .*inbox-th-customs/,
      "liaison nats consumers used the data dir's URL and broker credentials",
    );
  } finally {
    setEnv(saved);
  }
  // audit export with --data-dir alone (no LIAISON_DATA_DIR either): the same defaults from that data dir.
  setEnv({ ...env, LIAISON_DATA_DIR: undefined });
  try {
    const e = capture();
    t.equal(
      await run(['audit', 'export', '--data-dir', dataDir, '--out', join(dataDir, 'archive.json')], e.sink),
      0,
      e.io.stderr,
    );
    t.match(e.io.stderr, /exported \d+ entries/, 'liaison audit export reached the local server with --data-dir alone');
  } finally {
    setEnv(saved);
  }
  // th-customs, through its own account on the local server: its delivery of the first notice.
  const th = JSON.parse(readFileSync(join(natsDir, 'creds', 'agencies', 'th-customs.json'), 'utf8')) as {
    user: string;
    password: string;
    inbox_prefix: string;
    js_api_prefix: string;
    durable: string;
  };
  const anc = await tryConnect({ user: th.user, pass: th.password, inboxPrefix: th.inbox_prefix });
  try {
    const m = await (
      await anc.jetstream({ apiPrefix: th.js_api_prefix }).consumers.get('DELIVERIES', th.durable)
    ).next({ expires: 3000 });
    t.equal(
      m?.subject,
      'deliveries.th-customs.mekong-dragon-6.VN',
      'th-customs reads its delivery from the local server',
    );
    await m?.ackAck({ timeout: 3000 });
  } finally {
    await anc.close();
  }
  // Everything the gateway, its nats-server (JetStream's store) and the CLI wrote under the data dir is the owner's alone
  // (umask 077: core/data-dir.ts). answer.json and jwks.json are this test's own files.
  const open: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      if ((statSync(p).mode & 0o077) !== 0 && !['answer.json', 'jwks.json'].includes(e.name))
        open.push(`${p.slice(dataDir.length + 1)} ${(statSync(p).mode & 0o777).toString(8)}`);
    }
  };
  t.equal(statSync(dataDir).mode & 0o077, 0, 'the data dir is 0700');
  walk(dataDir);
  t.same(open, [], 'no file or directory under the data dir can be read by others, the JetStream store included');
}

t.test(
  'npm start under a supervisor: SIGTERM to npm reaches the gateway, which stops its nats-server and exits',
  async (t) => {
    // The built gateway, as npm start runs it (npm ci builds dist/; --ignore-scripts skips prestart's rebuild, not the script).
    t.ok(existsSync(join(repoRoot, 'dist', 'broker', 'main.js')), 'dist/ is built (npm ci, or npm run build)');
    const dataDir = mkdtempSync(join(tmpdir(), 'liaison-npm-start-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const npm = spawn('npm', ['start', '--ignore-scripts', '--', ...readmeStartArgs()], {
      cwd: repoRoot,
      env: { ...cleanEnv(), LIAISON_PORT: '0', LIAISON_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that a failed run leaves nothing behind (teardown); the test itself signals npm alone.
      detached: true,
    });
    const exited = new Promise<number | null>((r) => npm.once('exit', (code) => r(code)));
    t.teardown(() => {
      try {
        process.kill(-(npm.pid as number), 'SIGKILL');
      } catch {
        // the group is gone: everything exited
      }
    });
    let out = '';
    npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    npm.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/local nats-server pid \d+/.test(out) && Date.now() < deadline && npm.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    const natsPid = Number(/local nats-server pid (\d+)/.exec(out)?.[1]);
    t.ok(natsPid > 0, `the gateway started its nats-server: ${err}`);
    npm.kill('SIGTERM');
    t.equal(await exited, 0, 'npm start ended with the gateway, which shut down cleanly');
    t.ok(await goneWithin(natsPid, 5000), 'no nats-server left running');
  },
);

t.test('the liaison command ends quietly when its reader closes the pipe early (| head)', async (t) => {
  t.ok(existsSync(join(repoRoot, 'dist', 'broker', 'cli', 'liaison.js')), 'dist/ is built (npm ci, or npm run build)');
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'liaison.js'), '--help'], {
    cwd: repoRoot,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The reader is gone before the command writes a byte.
  child.stdout.destroy();
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  t.equal(code, 0);
  t.equal(err, '', 'no EPIPE stack trace');
});

t.test('npm start without --demo on an empty registry says how to get one', async (t) => {
  const { child, exited, dataDir, out } = await startGateway(t, [], /LIAISON_REGISTRY_SEED, start again\.\n/);
  t.match(out, /listening on http:\/\/127\.0\.0\.1:\d+/);
  t.match(
    out,
    /The member registry is empty: no agency can send or read yet\.\n {2}A demo network: start with --demo \(npm start -- --demo\)\.\n/,
  );
  t.ok(
    out.includes(
      `put the registry (schemas/registry.schema.json) in ${join(dataDir, 'registry.json')} or LIAISON_REGISTRY_SEED`,
    ),
    out,
  );
  t.notMatch(out, /Demo network:/);
  t.notOk(existsSync(join(dataDir, 'demo')), 'no demo network made');
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('start-up failures name the cause', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'liaison-start-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const start = (env: Record<string, string>) =>
    spawnSync(process.execPath, [`--import=${tsLoader}`, mainTs], {
      cwd: repoRoot,
      env: { ...cleanEnv(), LIAISON_DATA_DIR: dataDir, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const noNats = start({ LIAISON_NATS_SERVER_BIN: '/nonexistent/nats-server' });
  t.equal(noNats.status, 1);
  t.match(noNats.stderr, /nats-server was not found\. Install it \(Debian\/Ubuntu: sudo apt-get install nats-server/);
  // Started with plain `node` (not as npm start or the image runs it): told, not refused.
  const warning = noNats.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event?: string; heap_limit_mb?: number; expected_node_args?: string[] })
    .find((l) => l.event === 'heap-limit');
  t.ok(warning && warning.heap_limit_mb! > 2048, "a warning that the heap limit is V8's default, with the limit");
  t.same(warning?.expected_node_args, GATEWAY_NODE_ARGS, 'and the flags to start with');
  const badPort = start({ LIAISON_PORT: 'http' });
  t.equal(badPort.status, 2);
  t.match(badPort.stderr, /bad configuration: LIAISON_PORT: must be an integer/);
});

t.test('cli: keys generate, usage errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'my-agency.json');
  const g = capture();
  t.equal(
    await run(
      [
        'keys',
        'generate',
        '--agency',
        'my-agency',
        '--country',
        'MY',
        '--sig',
        'ES256',
        '--enc',
        'P-256',
        '--out',
        out,
      ],
      g.sink,
    ),
    0,
    g.io.stderr,
  );
  const record = JSON.parse(g.io.stdout);
  t.equal(record.id, 'my-agency');
  t.same(
    record.keys.map((k: { use: string; jwk: { crv: string } }) => [k.use, k.jwk.crv]),
    [
      ['sig', 'P-256'],
      ['enc', 'P-256'],
    ],
  );
  t.notOk(g.io.stdout.includes('"d"'), 'the registry record holds public keys only');
  const creds = JSON.parse(readFileSync(out, 'utf8'));
  t.type(creds.signing.d, 'string');
  writeFileSync(join(dir, 'notice.txt'), 'not JSON\n');
  // Exit codes: 2 for a command line that cannot run as given, 1 for a command that ran and failed or was refused.
  for (const [args, msg, code] of [
    [['keys', 'generate', '--agency', 'Bad.Id', '--country', 'MY'], /--agency/, 2],
    [['keys', 'generate', '--agency', 'ok', '--country', 'Malaysia'], /--country/, 2],
    [['keys', 'generate', '--agency', 'ok', '--country', 'MY', '--sig', 'RS256'], /--sig/, 2],
    [
      ['keys', 'generate', '--agency', 'ok', '--country', 'MY', '--frob'],
      /^liaison keys generate: Unknown option '--frob'/,
      2,
    ],
    [['notice', 'send'], /^liaison notice send: needs a FILE \(a notice JSON\) \(liaison notice send --help\)\n$/, 2],
    [['notice', 'send', 'x.json'], /--as/, 2],
    [['notice', 'send', 'x.json', '--as', 'nobody', '--data-dir', dir], /cannot read the credentials/, 1],
    [
      ['notice', 'send', join(dir, 'missing.json'), '--as', 'my-agency', '--credentials', out],
      /^liaison notice send: cannot read .*missing\.json: no such file\n$/,
      1,
    ],
    [
      ['notice', 'send', join(dir, 'notice.txt'), '--as', 'my-agency', '--credentials', out, '--stamp'],
      /^liaison notice send: --stamp: .*notice\.txt is not JSON/,
      1,
    ],
    [
      ['audit', 'verify', '--archive', join(dir, 'missing.json')],
      /^liaison audit verify: cannot read .*missing\.json: no such file\n$/,
      1,
    ],
    [['audit', 'verify'], /^liaison audit verify: needs --archive FILE/, 2],
    [
      ['admin', 'set-operation', '--file', join(dir, 'notice.txt'), '--as', 'hub-operator'],
      /^liaison admin set-operation: .*notice\.txt is not JSON/,
      1,
    ],
    [
      ['admin', 'set-agency', '--file', dir, '--as', 'hub-operator'],
      /^liaison admin set-agency: cannot read .*: it is a directory\n$/,
      1,
    ],
    [['receipt', 'verify'], /needs a RECEIPT/, 2],
    [['receipt', 'verify', 'a.b.c', '--url', 'http://127.0.0.1:1'], /cannot reach the broker/, 1],
    [['receipt', 'verify', 'a.b.c', '--url', 'ftp://x'], /only http:\/\/ and https:\/\//, 2],
    [['inbox', 'pull', '--credentials', out, '--limit', 'ten'], /--limit must be a non-negative integer/, 2],
  ] as const) {
    const c = capture();
    t.equal(await run([...args], c.sink), code, args.join(' '));
    t.match(c.io.stderr, msg);
  }
  const bare = capture();
  t.equal(await run([], bare.sink), 2, 'a bare liaison is a usage error');
  t.match(bare.io.stderr, /^liaison: needs a command\n\nliaison — the Liaison command line/);
  const version = capture();
  t.equal(await run(['--version'], version.sink), 0);
  t.equal(version.io.stdout, `liaison ${JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version}\n`);
  // Private keys: by default under the data dir; never silently over an existing file or where git would track them.
  const dataDirKeys = capture();
  t.equal(
    await run(['keys', 'generate', '--agency', 'my-agency', '--country', 'MY', '--data-dir', dir], dataDirKeys.sink),
    0,
    dataDirKeys.io.stderr,
  );
  t.equal(statSync(join(dir, 'keys', 'my-agency.json')).mode & 0o777, 0o600, 'written to DATA_DIR/keys/ID.json, 0600');
  t.equal(statSync(join(dir, 'keys')).mode & 0o777, 0o700);
  const again = capture();
  t.equal(
    await run(['keys', 'generate', '--agency', 'my-agency', '--country', 'MY', '--data-dir', dir], again.sink),
    1,
    'an existing key file is not replaced',
  );
  t.match(again.io.stderr, /my-agency\.json exists; .*--force/);
  const work = join(dir, 'work');
  spawnSync('git', ['init', '-q', work]);
  writeFileSync(join(work, '.gitignore'), 'secrets/\n');
  const tracked = capture();
  t.equal(
    await run(
      ['keys', 'generate', '--agency', 'my-agency', '--country', 'MY', '--out', join(work, 'my-agency.json')],
      tracked.sink,
    ),
    1,
    'a path git would track is refused',
  );
  t.match(tracked.io.stderr, /inside a git work tree and not ignored/);
  t.notOk(existsSync(join(work, 'my-agency.json')), 'and nothing is written');
  t.equal(
    await run(
      [
        'keys',
        'generate',
        '--agency',
        'my-agency',
        '--country',
        'MY',
        '--out',
        join(work, 'secrets', 'my-agency.json'),
      ],
      capture().sink,
    ),
    0,
    'an ignored path in the work tree is fine',
  );
  t.equal(
    await run(
      [
        'keys',
        'generate',
        '--agency',
        'my-agency',
        '--country',
        'MY',
        '--out',
        join(work, 'my-agency.json'),
        '--force',
      ],
      capture().sink,
    ),
    0,
    '--force writes it anyway',
  );
  const groupHelp = capture();
  t.equal(await run(['admin', '--help'], groupHelp.sink), 0, 'a group with --help: its usage, exit 0');
  t.match(groupHelp.io.stdout, /^Usage:\n.*liaison admin rotate-encryption-keys/s);
  t.equal(groupHelp.io.stderr, '');
  const unknown = capture();
  t.equal(await run(['frobnicate', 'now'], unknown.sink), 2);
  t.match(unknown.io.stderr, /^liaison: unknown command "frobnicate now"/);
  // A group alone, or with a subcommand it does not have: its subcommands, and their usage only.
  const group = capture();
  t.equal(await run(['admin'], group.sink), 2);
  t.match(
    group.io.stderr,
    /^liaison admin: needs a subcommand: rotate-encryption-keys, rotate-signing-key, rotate-storage-key, add-key, rotate-key, revoke-key, get-agency, get-operation, get-registry, set-agency, set-operation, erase, review-due\n\nUsage:\n/,
  );
  t.notMatch(group.io.stderr, /liaison notice send/);
  const wrongSub = capture();
  t.equal(await run(['audit', 'check'], wrongSub.sink), 2);
  t.match(wrongSub.io.stderr, /^liaison audit: unknown subcommand "check": verify, export\n/);
  t.match(wrongSub.io.stderr, /liaison audit export \[--nats URL\]/);
  const help = capture();
  t.equal(await run(['--help'], help.sink), 0);
  t.match(help.io.stdout, /liaison notice send FILE --as AGENCY/);
  const subHelp = capture();
  t.equal(await run(['notice', 'send', '--help'], subHelp.sink), 0);
  t.match(subHelp.io.stdout, /liaison notice send FILE/);
  t.notMatch(subHelp.io.stdout, /liaison receipt verify/, "a command's --help shows that command only");
  const keysHelp = capture();
  t.equal(await run(['keys', 'generate', '-h'], keysHelp.sink), 0);
  t.match(keysHelp.io.stdout, /^Usage:\n {2}liaison keys generate/);
});
