/**
 * The `liaison` CLI against a real gateway with tls: true and mtls: 'required'
 * (real sockets on 127.0.0.1, the dev CA of certs/pki.ts): --cert/--key/--ca
 * (or LIAISON_CLIENT_CERT / LIAISON_CLIENT_KEY / LIAISON_CA) on every command
 * that talks HTTP to the gateway.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import { clientFetch } from '../broker/agency-client/http.js';
import { UsageError } from '../broker/core/usage-error.js';
import { throwsWith } from './helpers/assert-error.js';
import { STREAMS } from '../broker/nats/streams.js';
import { Pki } from '../certs/pki.js';
import { startTestGateway } from './helpers/gateway.js';
import { runCli } from './helpers/cli.js';
import { startTestNats } from './helpers/nats.js';

const cli = runCli;
const TLS_ENV = ['LIAISON_CLIENT_CERT', 'LIAISON_CLIENT_KEY', 'LIAISON_CA', 'LIAISON_URL'] as const;
const savedEnv = Object.fromEntries(TLS_ENV.map((k) => [k, process.env[k]]));
for (const k of TLS_ENV) delete process.env[k];
t.teardown(() => {
  for (const k of TLS_ENV)
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
});

const nats = await startTestNats(t);
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-cli-mtls-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const { paths } = Pki.init(join(dataDir, 'pki'), { agencies: ['vn-customs', 'th-customs', 'hub-auditor'] });
const g = await startTestGateway(t, nats.url, { tls: true, mtls: 'required' }, { dataDir });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const sample = join(repoRoot, 'docs', 'examples', 'notices', 'seizure-report.json');
const tlsArgs = (agency: string) => [
  '--cert',
  paths.agencyCert(agency),
  '--key',
  paths.agencyKey(agency),
  '--ca',
  paths.caCert,
];
const noticeCount = async () => (await g.gw.bus.jsm.streams.info(STREAMS.notices)).state.messages;
const noStack = (t: Test, text: string) => t.notMatch(text, /\n\s+at [\w.<]/, 'no stack trace');

t.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);

let receipt = '';
t.test(
  "the agency's own certificate: notice send gets a receipt, receipt verify fetches the keys over mTLS",
  async (t) => {
    const sent = await cli([
      'notice',
      'send',
      sample,
      '--as',
      'vn-customs',
      '--stamp',
      '--url',
      url,
      '--data-dir',
      dataDir,
      ...tlsArgs('vn-customs'),
    ]);
    t.equal(sent.code, 0, sent.stderr + sent.stdout);
    t.match(sent.stdout, /^accepted: notice [0-9a-f-]{36} at log index \d+/);
    t.match(sent.stdout, /recipients: .*th-customs/);
    receipt = /receipt: (\S+)/.exec(sent.stdout)?.[1] ?? '';
    const v = await cli(['receipt', 'verify', receipt, '--url', url, ...tlsArgs('th-customs')]);
    t.equal(v.code, 0, v.stderr);
    t.match(v.stdout, /^receipt verifies: notice /);
  },
);

t.test('the environment gives the defaults: LIAISON_CLIENT_CERT, LIAISON_CLIENT_KEY, LIAISON_CA', async (t) => {
  process.env.LIAISON_CLIENT_CERT = paths.agencyCert('vn-customs');
  process.env.LIAISON_CLIENT_KEY = paths.agencyKey('vn-customs');
  process.env.LIAISON_CA = paths.caCert;
  process.env.LIAISON_URL = url;
  t.teardown(() => {
    for (const k of TLS_ENV) delete process.env[k];
  });
  const sent = await cli(['notice', 'send', sample, '--as', 'vn-customs', '--stamp', '--data-dir', dataDir, '--json']);
  t.equal(sent.code, 0, sent.stderr + sent.stdout);
  const answer = JSON.parse(sent.stdout) as { status: number; receipt: string };
  t.equal(answer.status, 202);
  t.type(answer.receipt, 'string');
});

t.test('no client certificate: a clear refusal, no stack trace, nothing stored', async (t) => {
  const before = await noticeCount();
  const sent = await cli([
    'notice',
    'send',
    sample,
    '--as',
    'vn-customs',
    '--stamp',
    '--url',
    url,
    '--data-dir',
    dataDir,
    '--ca',
    paths.caCert,
  ]);
  t.equal(sent.code, 1);
  t.match(
    sent.stderr,
    /^liaison notice send: the broker at https:\/\/127\.0\.0\.1:\d+ requires a client certificate \(mutual TLS\): pass --cert FILE --key FILE \(or set LIAISON_CLIENT_CERT and LIAISON_CLIENT_KEY\)\n$/,
  );
  noStack(t, sent.stderr);
  const pull = await cli([
    'inbox',
    'pull',
    '--as',
    'th-customs',
    '--url',
    url,
    '--data-dir',
    dataDir,
    '--ca',
    paths.caCert,
  ]);
  t.equal(pull.code, 1);
  t.match(pull.stderr, /requires a client certificate/);
  const v = await cli(['receipt', 'verify', receipt, '--url', url, '--ca', paths.caCert]);
  t.equal(v.code, 1);
  t.match(v.stderr, /requires a client certificate/);
  t.equal(await noticeCount(), before);
});

t.test("without --ca the gateway's certificate is not trusted: said so", async (t) => {
  const sent = await cli([
    'notice',
    'send',
    sample,
    '--as',
    'vn-customs',
    '--stamp',
    '--url',
    url,
    '--data-dir',
    dataDir,
    '--cert',
    paths.agencyCert('vn-customs'),
    '--key',
    paths.agencyKey('vn-customs'),
  ]);
  t.equal(sent.code, 1);
  t.match(
    sent.stderr,
    /the broker's TLS certificate at https:\/\/127\.0\.0\.1:\d+ is not trusted \([A-Z_]+\): pass the network CA with --ca FILE or LIAISON_CA/,
  );
  noStack(t, sent.stderr);
});

t.test("agency A's certificate used as agency B: refused with the gateway's problem code", async (t) => {
  const before = await noticeCount();
  const sent = await cli([
    'notice',
    'send',
    sample,
    '--as',
    'th-customs',
    '--stamp',
    '--url',
    url,
    '--data-dir',
    dataDir,
    ...tlsArgs('vn-customs'),
  ]);
  t.equal(sent.code, 1);
  t.match(sent.stdout, /^refused \(403 client-cert-mismatch\): /);
  const json = await cli([
    'notice',
    'send',
    sample,
    '--as',
    'th-customs',
    '--stamp',
    '--url',
    url,
    '--data-dir',
    dataDir,
    '--json',
    ...tlsArgs('vn-customs'),
  ]);
  t.equal(json.code, 1);
  t.match(JSON.parse(json.stdout), { status: 403, code: 'client-cert-mismatch' });
  t.equal(await noticeCount(), before, 'nothing stored');
  const pull = await cli([
    'inbox',
    'pull',
    '--as',
    'th-customs',
    '--url',
    url,
    '--data-dir',
    dataDir,
    ...tlsArgs('vn-customs'),
  ]);
  t.equal(pull.code, 1);
  t.match(pull.stderr, /^liaison inbox pull: 403 client-cert-mismatch: /);
  noStack(t, pull.stderr);
  const audit = await cli([
    'audit',
    'verify',
    '--url',
    url,
    '--as',
    'hub-auditor',
    '--data-dir',
    dataDir,
    ...tlsArgs('vn-customs'),
  ]);
  t.equal(audit.code, 1);
  t.match(audit.stderr, /^liaison audit verify: GET .* answered 403 client-cert-mismatch: /);
});

t.test('inbox pull and follow, audit verify: with the right certificate', async (t) => {
  let pulled = { code: -1, stdout: '', stderr: '' };
  for (let i = 0; i < 100; i++) {
    pulled = await cli([
      'inbox',
      'pull',
      '--as',
      'th-customs',
      '--url',
      url,
      '--data-dir',
      dataDir,
      '--json',
      ...tlsArgs('th-customs'),
    ]);
    if (pulled.code !== 0 || /"verified":true/.test(pulled.stdout)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(pulled.code, 0, pulled.stderr);
  t.match(pulled.stdout, /"verified":true/, 'th-customs pulled, decrypted and verified a delivery');
  const followed = await cli([
    'inbox',
    'follow',
    '--as',
    'th-customs',
    '--url',
    url,
    '--data-dir',
    dataDir,
    '--count',
    '1',
    '--json',
    ...tlsArgs('th-customs'),
  ]);
  t.equal(followed.code, 0, followed.stderr);
  t.match(JSON.parse(followed.stdout.trim().split('\n')[0] ?? '{}'), { verified: true, cursor: Number });
  let audit = { code: -1, stdout: '', stderr: '' };
  for (let i = 0; i < 100; i++) {
    audit = await cli([
      'audit',
      'verify',
      '--url',
      url,
      '--as',
      'hub-auditor',
      '--data-dir',
      dataDir,
      ...tlsArgs('hub-auditor'),
    ]);
    if (audit.code === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(audit.code, 0, audit.stderr + audit.stdout);
  t.match(audit.stdout, /the log verifies/);
});

t.test('usage errors are one clear line', async (t) => {
  const noKey = await cli([
    'inbox',
    'pull',
    '--as',
    'th-customs',
    '--url',
    url,
    '--data-dir',
    dataDir,
    '--cert',
    paths.agencyCert('th-customs'),
  ]);
  t.equal(noKey.code, 2, 'a usage error');
  t.match(noKey.stderr, /needs both --cert and --key/);
  const missing = await cli([
    'inbox',
    'pull',
    '--as',
    'th-customs',
    '--url',
    url,
    '--data-dir',
    dataDir,
    '--cert',
    '/nonexistent.crt',
    '--key',
    '/nonexistent.key',
  ]);
  t.match(missing.stderr, /--cert \/nonexistent\.crt: cannot be read \(ENOENT\)/);
  const plain = await cli([
    'inbox',
    'pull',
    '--as',
    'th-customs',
    '--url',
    url.replace('https:', 'http:'),
    '--data-dir',
    dataDir,
    ...tlsArgs('th-customs'),
  ]);
  t.match(plain.stderr, /need an https:\/\/ --url/);
  throwsWith(t, () => clientFetch('http://127.0.0.1:1', { ca: paths.caCert }), UsageError, 'command-line-invalid', {
    what: 'TLS options with an http:// URL: a usage error',
  });
  const help = await cli(['inbox', 'pull', '--help']);
  t.match(help.stdout, /--cert FILE --key FILE\] \[--ca FILE\]/);
  const sendHelp = await cli(['notice', 'send', '--help']);
  t.match(sendHelp.stdout, /--cert\/--key present the agency's client certificate/);
});
