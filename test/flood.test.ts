/**
 * Flood protection over real TLS on 127.0.0.1, bounded in count and time:
 * per-agency rate limits (429) keyed by the client certificate, back-pressure
 * (503 + Retry-After) when the event loop lags, the gateway stays up and
 * serves normal traffic right after.
 */
import t from 'tap';
import { Agent } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pki } from '../certs/pki.js';
import { startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { httpsCall, identity, type TlsAnswer } from './helpers/tls-client.js';

const nats = await startTestNats(t);
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-flood-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const { paths } = Pki.init(join(dataDir, 'pki'), { agencies: ['vn-customs', 'th-customs'] });
const pki = Pki.open(paths.dir);
const ca = readFileSync(paths.caCert);

/** Fire `count` requests, `concurrency` at a time, stopping at `deadline`; tally statuses and connection errors. */
async function flood(base: string, agency: string, count: number, concurrency: number, budgetMs: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca, ...identity(pki, agency) });
  const deadline = Date.now() + budgetMs;
  const statuses = new Map<number, number>();
  const samples = new Map<number, TlsAnswer>();
  let errors = 0;
  let sent = 0;
  const worker = async () => {
    while (sent < count && Date.now() < deadline) {
      sent++;
      try {
        const r = await httpsCall(base, { ca, path: '/v1/keys', agent, timeoutMs: 5000 });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (!samples.has(r.status)) samples.set(r.status, r);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return { statuses, samples, errors, sent };
}

t.test(
  'rate limit per agency: 429 problems for the flooding agency, others served, the flooder served again after the window',
  async (t) => {
    const g = await startTestGateway(
      t,
      nats.url,
      { tls: true, mtls: 'required', rateLimitMax: 40, rateLimitWindowMs: 1500, router: false, checkpointer: false },
      { dataDir },
    );
    const base = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
    const started = Date.now();
    const f = await flood(base, 'vn-customs', 400, 16, 10_000);
    t.ok(Date.now() - started < 12_000, 'the flood is bounded in time');
    t.equal(f.errors, 0, 'no connection was dropped');
    t.ok((f.statuses.get(200) ?? 0) >= 40, `served up to the limit (${JSON.stringify([...f.statuses])})`);
    t.ok((f.statuses.get(429) ?? 0) > 0, 'the rest is refused with 429');
    const p = f.samples.get(429) as TlsAnswer;
    t.equal(p.json.code, 'rate-limited');
    t.equal(p.json.status, 429);
    t.match(p.headers['content-type'], /^application\/problem\+json/);
    t.ok(Number(p.headers['retry-after']) >= 1, 'with Retry-After');

    // Another agency is not affected: its certificate is its own key.
    const other = await httpsCall(base, { ca, id: identity(pki, 'th-customs'), path: '/v1/keys' });
    t.equal(other.status, 200, 'another agency is served at once');
    // Liveness is never limited.
    t.equal(
      (await httpsCall(base, { ca, id: identity(pki, 'vn-customs'), path: '/healthz' })).status,
      200,
      '/healthz stays up',
    );
    // After the window, the flooding agency is served again.
    let status = 0;
    const deadline = Date.now() + 5000;
    for (let i = 0; i < 50 && Date.now() < deadline && status !== 200; i++) {
      status = (await httpsCall(base, { ca, id: identity(pki, 'vn-customs'), path: '/v1/keys' })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    t.equal(status, 200, 'the flooder is served again after the window');
  },
);

t.test(
  'back-pressure: 503 unavailable with Retry-After while the event loop lags, normal service right after',
  async (t) => {
    const g = await startTestGateway(
      t,
      nats.url,
      {
        tls: true,
        mtls: 'required',
        rateLimitMax: 0,
        maxEventLoopDelayMs: 40,
        pressureSampleIntervalMs: 50,
        router: false,
        checkpointer: false,
      },
      { dataDir },
    );
    const base = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
    // On a busy test machine start-up itself may lag: wait (bounded) until the gateway serves.
    let first = 0;
    for (let i = 0; i < 100 && first !== 200; i++) {
      first = (await httpsCall(base, { ca, id: identity(pki, 'th-customs'), path: '/v1/keys' })).status;
      if (first !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(first, 200, 'served before the overload');
    // Saturate the gateway's CPU (the gateway runs in this process): 90 ms of
    // synchronous work every 100 ms for at most 2.5 s, as a decrypt storm would.
    const burnUntil = Date.now() + 2500;
    const burner = setInterval(() => {
      const end = Date.now() + 90;
      while (Date.now() < end && Date.now() < burnUntil);
      if (Date.now() >= burnUntil) clearInterval(burner);
    }, 100);
    t.teardown(() => clearInterval(burner));
    const f = await flood(base, 'vn-customs', 300, 8, 2400);
    clearInterval(burner);
    t.equal(f.errors, 0, 'no connection was dropped');
    t.ok((f.statuses.get(503) ?? 0) > 0, `some requests are shed with 503 (${JSON.stringify([...f.statuses])})`);
    const p = f.samples.get(503) as TlsAnswer;
    t.equal(p.json.code, 'unavailable');
    t.match(p.headers['content-type'], /^application\/problem\+json/);
    t.equal(p.headers['retry-after'], String(g.config.retryAfterSeconds), 'with Retry-After');

    // Once the load is gone, the next sample clears the pressure: served again within a few sample intervals.
    let status = 0;
    const until = Date.now() + 8000;
    const startedAt = Date.now();
    for (let i = 0; i < 160 && Date.now() < until && status !== 200; i++) {
      status = (await httpsCall(base, { ca, id: identity(pki, 'th-customs'), path: '/v1/keys' })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(status, 200, `served again ${Date.now() - startedAt} ms after the overload`);
    t.equal((await httpsCall(base, { ca, id: identity(pki, 'vn-customs'), path: '/readyz' })).status, 200, 'ready');
  },
);
