import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMetricsToken } from '../broker/http/metrics.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

t.setTimeout(120_000);
const dir = mkdtempSync(join(tmpdir(), 'liaison-metrics-token-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const token = 'mT0k-' + 'x'.repeat(40);
const file = join(dir, 'token');
writeFileSync(file, `${token}\n`, { mode: 0o600 });

t.test('the token file: one token of at least 32 characters, or start-up stops', async (t) => {
  t.equal(readMetricsToken(file), token, 'read and trimmed');
  const short = join(dir, 'short');
  writeFileSync(short, 'too-short');
  t.throws(() => readMetricsToken(short), /at least 32 characters/);
  const two = join(dir, 'two');
  writeFileSync(two, `${token} ${token}`);
  t.throws(() => readMetricsToken(two), /one token/);
  t.throws(
    () => readMetricsToken(join(dir, 'missing')),
    /LIAISON_METRICS_TOKEN_FILE .*cannot read .*ENOENT/,
    'a missing file is named, with its error code',
  );
});

t.test(
  'with metricsTokenFile, GET /metrics needs the bearer token, on the API port and on the operations listener',
  async (t) => {
    const nats = await startTestNats(t);
    const g = await startTestGateway(t, nats.url, {
      webhook: false,
      router: false,
      checkpointer: false,
      metricsTokenFile: file,
    });
    const api = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
    const ops = await g.gw.ops.listen({ host: '127.0.0.1', port: 0 });
    for (const [where, url] of [
      ['API port', api],
      ['operations listener', ops],
    ] as const) {
      const get = (authorization?: string) =>
        fetch(`${url}/metrics`, {
          headers: authorization ? { authorization } : {},
          signal: AbortSignal.timeout(10_000),
        });
      for (const [what, auth] of [
        ['no token', undefined],
        ['a wrong token', `Bearer ${token.slice(0, -1)}Y`],
        ['the token without Bearer', token],
        ['a longer token', `Bearer ${token}x`],
      ] as const) {
        const res = await get(auth);
        t.equal(res.status, 401, `${where}, ${what}: 401`);
        const body = (await res.json()) as { code: string };
        t.equal(body.code, 'unauthorized');
      }
      const ok = await get(`Bearer ${token}`);
      t.equal(ok.status, 200, `${where}, the token: 200`);
      t.match(await ok.text(), /liaison_notices_accepted_total/, 'the exposition');
    }
    t.notMatch(g.logLines.join('\n'), token, 'the token never reaches a log line');
    t.notOk(
      g.logLines.some((l) => l.includes('metrics-token-file-mode')),
      'a 0600 token file draws no warning',
    );
  },
);

t.test('without metricsTokenFile: the API port does not serve /metrics; the operations listener does', async (t) => {
  const nats = await startTestNats(t);
  const g = await startTestGateway(t, nats.url, { webhook: false, router: false, checkpointer: false });
  const api = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
  const ops = await g.gw.ops.listen({ host: '127.0.0.1', port: 0 });
  const open = await fetch(`${api}/metrics`, { signal: AbortSignal.timeout(10_000) });
  t.equal(open.status, 404, 'the API port: 404');
  const body = (await open.json()) as { code: string; detail?: string };
  t.equal(body.code, 'not-found');
  t.notMatch(JSON.stringify(body), /liaison_|process_/, 'nothing of the exposition');
  const scraped = await fetch(`${ops}/metrics`, { signal: AbortSignal.timeout(10_000) });
  t.equal(scraped.status, 200, 'the operations listener: 200 without a token');
  t.match(await scraped.text(), /^# TYPE liaison_notices_refused_total counter$/m);
});
