/** `npm start -- --demo` with TLS on: the demo PKI is made under the data dir, the gateway serves HTTPS, the printed command works. */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import { freePort } from '../broker/nats/local-server.js';

const tsLoader = join(repoRoot, 'node_modules', '@tapjs', 'typescript', 'dist', 'esm', 'import.mjs');
const env = () => {
  const e = { ...process.env };
  delete e.NATS_URL;
  delete e.LIAISON_CONFIG;
  return e;
};

t.test('npm start -- --demo with LIAISON_TLS=true and LIAISON_MTLS=optional', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'liaison-tls-start-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const opsPort = await freePort('127.0.0.1');
  const child = spawn(process.execPath, [`--import=${tsLoader}`, join(repoRoot, 'broker', 'main.ts'), '--demo'], {
    cwd: repoRoot,
    env: {
      ...env(),
      LIAISON_PORT: '0',
      LIAISON_OPS_PORT: String(opsPort),
      LIAISON_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      LIAISON_TLS: 'true',
      LIAISON_MTLS: 'optional',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!/Send a first notice:\n\s+.*npx liaison .*\n/.test(out) && Date.now() < deadline && child.exitCode === null)
    await new Promise((r) => setTimeout(r, 100));
  t.match(out, /listening on https:\/\/127\.0\.0\.1:\d+/, err);
  // The operations listener: plain HTTP beside the HTTPS API port, as the image's HEALTHCHECK calls it.
  t.match(
    out,
    new RegExp(
      `^Operations \\(GET /healthz, /readyz, /metrics; plain HTTP, no client certificate\\): http://127\\.0\\.0\\.1:${opsPort}$`,
      'm',
    ),
  );
  const health = await fetch(`http://127.0.0.1:${opsPort}/healthz`, { signal: AbortSignal.timeout(10_000) });
  t.equal(health.status, 200, 'GET /healthz over plain HTTP on the operations port');
  const pki = join(dataDir, 'pki');
  for (const f of ['ca.crt', 'crl.pem', 'server/gateway.crt', 'agencies/vn-customs.crt', 'agencies/iq-police.crt'])
    t.ok(existsSync(join(pki, f)), `${f} under the data dir`);
  for (const f of ['ca/ca.key', 'server/gateway.key', 'agencies/vn-customs.key'])
    t.equal(statSync(join(pki, f)).mode & 0o777, 0o600, `${f} is 0600`);

  // The printed command, as a user would paste it: npx liaison notice send ... --ca <the demo CA>
  const line = /^\s+npx liaison (.*)$/m.exec(out);
  const args = (line?.[1] ?? '').trim().split(/\s+/);
  t.equal(args[args.indexOf('--ca') + 1], join(pki, 'ca.crt'), 'the command trusts the demo CA');
  t.equal(args[args.indexOf('--data-dir') + 1], dataDir, 'and names the data dir, which is not ./data');
  const cli = spawnSync(
    process.execPath,
    [
      `--import=${tsLoader}`,
      '--input-type=module',
      '-e',
      `import { run } from ${JSON.stringify(join(repoRoot, 'broker', 'cli', 'liaison.ts'))}; process.exitCode = await run(${JSON.stringify(args)});`,
    ],
    {
      cwd: repoRoot,
      env: env(),
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  t.equal(cli.status, 0, cli.stderr);
  t.match(cli.stdout, /accepted: notice [0-9a-f-]{36} at log index 0/);

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean shutdown');
});

t.test('an operations port in use stops start-up, naming the setting', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'liaison-ops-busy-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const busy = createServer().listen(0, '127.0.0.1');
  await once(busy, 'listening');
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const child = spawn(process.execPath, [`--import=${tsLoader}`, join(repoRoot, 'broker', 'main.ts'), '--demo'], {
    cwd: repoRoot,
    env: { ...env(), LIAISON_PORT: '0', LIAISON_OPS_PORT: String(port), LIAISON_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 1, 'exits 1');
  t.match(
    err,
    new RegExp(
      `start-up failed: the operations listener cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\): set LIAISON_OPS_PORT to a free port, or 0 for none`,
    ),
  );
});
