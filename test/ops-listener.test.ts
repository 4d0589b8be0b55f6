/**
 * The operations listener (broker/http/ops.ts): health checks and /metrics over
 * plain HTTP without a client certificate, whatever the API port's TLS mode,
 * including `mtls: required`, where the API port refuses such a client in the
 * TLS handshake.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../broker/config/config.js';
import { throwsWith } from './helpers/assert-error.js';
import { Pki } from '../certs/pki.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { httpsCall, identity } from './helpers/tls-client.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-ops-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const { paths } = Pki.init(join(dataDir, 'pki'), { agencies: ['vn-customs'] });
const pki = Pki.open(paths.dir);
const ca = readFileSync(paths.caCert);

const get = async (url: string, init: RequestInit = {}) => {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
};

const modes = [
  { name: 'plain HTTP', overrides: { tls: false } },
  { name: 'TLS, mtls off', overrides: { tls: true, mtls: 'off' } },
  { name: 'TLS, mtls optional', overrides: { tls: true, mtls: 'optional' } },
  { name: 'TLS, mtls required', overrides: { tls: true, mtls: 'required' } },
] as const;

for (const mode of modes) {
  t.test(
    `${mode.name}: the operations listener answers health checks and scrapes without a client certificate`,
    async (t) => {
      const g = await startTestGateway(
        t,
        nats.url,
        { ...mode.overrides, router: false, checkpointer: false, webhook: false },
        { dataDir },
      );
      const api = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
      const ops = await g.gw.ops.listen({ host: '127.0.0.1', port: 0 });
      t.match(ops, /^http:\/\/127\.0\.0\.1:\d+$/, 'plain HTTP, whatever the API port serves');
      t.match(api, mode.overrides.tls ? /^https:/ : /^http:/);

      const live = await get(`${ops}/healthz`);
      t.equal(live.status, 200, 'GET /healthz: 200');
      t.same(JSON.parse(live.text), { status: 'ok' });
      const ready = await get(`${ops}/readyz`);
      t.equal(ready.status, 200, 'GET /readyz: 200');
      t.same(JSON.parse(ready.text), { status: 'ready' }, 'ready, and no counts');
      const scrape = await get(`${ops}/metrics`);
      t.equal(scrape.status, 200, 'GET /metrics: 200');
      t.match(scrape.type, /^text\/plain; version=0\.0\.4/);
      t.match(scrape.text, /^liaison_nats_connected 1$/m);

      // Only the operations routes, each only with GET: problems otherwise.
      const other = await get(`${ops}/v1/keys`);
      t.equal(other.status, 404);
      t.equal(other.type, 'application/problem+json; charset=utf-8');
      t.equal(JSON.parse(other.text).code, 'not-found');
      const post = await get(`${ops}/healthz`, { method: 'POST' });
      t.equal(post.status, 405);
      t.equal(JSON.parse(post.text).code, 'method-not-allowed');
      const undecodable = await get(`${ops}/healthz%ZZ`);
      t.equal(undecodable.status, 400, 'a path that does not decode: 400');
      t.equal(JSON.parse(undecodable.text).code, 'bad-request');
      t.notMatch(undecodable.text, /%ZZ/, 'the path is not echoed');

      if (mode.overrides.tls && mode.overrides.mtls === 'required') {
        // Why the listener exists: the API port lets no client without a certificate finish the handshake.
        const refused = await httpsCall(api, { ca, path: '/healthz' }).then(
          () => null,
          (e: Error) => e,
        );
        t.ok(refused, 'the API port refuses a health check without a client certificate');
        const withCert = await httpsCall(api, { ca, id: identity(pki, 'vn-customs'), path: '/healthz' });
        t.equal(withCert.status, 200, 'with an agency certificate it answers');
      } else if (mode.overrides.tls) {
        const viaApi = await httpsCall(api, { ca, path: '/healthz' });
        t.equal(viaApi.status, 200, 'the API port answers a health check without a certificate as well');
      } else {
        t.equal((await get(`${api}/healthz`)).status, 200, 'the API port answers a health check as well');
      }
    },
  );
}

t.test('configuration: opsHost and opsPort', async (t) => {
  const c = loadConfig({});
  t.equal(c.opsHost, '127.0.0.1', 'loopback by default');
  t.equal(c.opsPort, 9180);
  t.equal(loadConfig({ LIAISON_OPS_PORT: '0' }).opsPort, 0, '0: no operations listener');
  throwsWith(t, () => loadConfig({ LIAISON_PORT: '9000', LIAISON_OPS_PORT: '9000' }), ConfigError, 'config-invalid', {
    message: /LIAISON_OPS_PORT \(config key "opsPort"\): must differ from port/,
  });
  throwsWith(t, () => loadConfig({ LIAISON_OPS_PORT: 'metrics' }), ConfigError, 'config-invalid', {
    message: /LIAISON_OPS_PORT: must be an integer/,
  });
});
