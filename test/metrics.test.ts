import t from 'tap';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
// webhook: false — WebhookDeliverer.close() right after start waits ~45 s (reported to the lead); not needed here.
const g = await startTestGateway(t, nats.url, { webhook: false, checkpointIntervalMs: 200, checkpointEveryEntries: 2 });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
// /metrics is served on the operations listener (without metricsTokenFile, not on the API port).
const opsUrl = await g.gw.ops.listen({ host: '127.0.0.1', port: 0 });

/** The exposition text as a map: `name{labels}` -> value. */
async function scrape(): Promise<{
  text: string;
  get(name: string, labels?: Record<string, string>): number | undefined;
  contentType: string;
  status: number;
}> {
  const res = await fetch(`${opsUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) values.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return {
    text,
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    get: (name, labels = {}) => {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      return values.get(l ? `${name}{${l}}` : name);
    },
  };
}

const notice = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });

t.test('without a metrics token, /metrics is on the operations listener only: the API port answers 404', async (t) => {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  t.equal(res.status, 404);
  t.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  t.equal(((await res.json()) as { code: string }).code, 'not-found');
  const docs = (await (await fetch(`${url}/docs/json`, { signal: AbortSignal.timeout(10_000) })).json()) as {
    paths: Record<string, unknown>;
  };
  t.notOk('/metrics' in docs.paths, 'nor is it in the API description');
});

t.test('/metrics answers in the Prometheus text format with every family, from zero', async (t) => {
  const m = await scrape();
  t.equal(m.status, 200);
  t.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  for (const family of [
    'liaison_notices_accepted_total',
    'liaison_notices_refused_total',
    'liaison_ingest_step_duration_seconds',
    'liaison_deliveries_total',
    'liaison_deliveries_written_total',
    'liaison_webhook_retries_total',
    'liaison_webhook_dead_letters_total',
    'liaison_log_size',
    'liaison_checkpoint_age_seconds',
    'liaison_router_lag_notices',
    'liaison_nats_connected',
    'liaison_http_request_duration_seconds',
    'liaison_thread_cpu_seconds_total',
    'process_cpu_user_seconds_total',
  ])
    t.match(m.text, new RegExp(`^# TYPE ${family} `, 'm'), family);
  t.equal(m.get('liaison_notices_refused_total', { code: 'schema-invalid' }), 0, 'every problem code starts at 0');
  t.equal(m.get('liaison_notices_accepted_total', { duplicate: 'false' }), 0);
  t.equal(m.get('liaison_nats_connected'), 1);
  t.equal(m.get('liaison_log_size'), 0);
});

t.test('posting notices moves the counters, histograms and gauges', async (t) => {
  const ids: string[] = [];
  let lastJwe = '';
  for (let i = 0; i < 3; i++) {
    const n = notice();
    ids.push(n.id);
    lastJwe = (await g.seal(n, 'vn-customs')).jwe;
    t.equal((await g.post(lastJwe)).status, 202);
  }
  t.equal((await g.post(lastJwe)).status, 202, 'a retry of the same bytes');
  t.equal((await g.post('not-a-jwe')).json.code, 'envelope-malformed');
  t.equal((await g.post('{}', 'application/json')).json.code, 'unsupported-media-type');
  const old = notice();
  ids.push(old.id);
  t.equal(
    (
      await g.post(
        (await g.seal({ ...old, created_at: new Date(Date.now() - 86_400_000).toISOString() }, 'vn-customs')).jwe,
      )
    ).json.code,
    'replay',
  );

  // The router fans the three notices out; the checkpointer covers them.
  const routed = await waitFor(
    async () => {
      const m = await scrape();
      return (m.get('liaison_router_notices_routed_total') ?? 0) >= 3 && m.get('liaison_router_lag_notices') === 0
        ? m
        : undefined;
    },
    'the router to route 3 notices',
    20_000,
  );
  t.equal(routed.get('liaison_router_notices_routed_total'), 3);
  t.ok((routed.get('liaison_deliveries_written_total') ?? 0) >= 3, 'at least one delivery per notice was written');

  const th = g.creds('th-customs');
  const client = new InboxClient({
    url,
    agency: 'th-customs',
    signingKey: th.signing,
    encryptionKey: th.encryption,
    brokerId: g.config.brokerId,
  });
  const page = await client.pull({ after: 0, limit: 50 });
  t.ok(page.deliveries.length >= 3);

  // And the live stream: read the same deliveries over SSE, then stop.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 15_000);
  let seen = 0;
  try {
    for await (const _d of client.follow({ after: 0 }, abort.signal)) if (++seen >= 3) break;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  t.equal(seen, 3, 'three deliveries over SSE');

  const m = await waitFor(
    async () => {
      const s = await scrape();
      return (s.get('liaison_deliveries_total', { mode: 'sse' }) ?? 0) >= 3 &&
        (s.get('liaison_checkpoint_tree_size') ?? -1) >= 3
        ? s
        : undefined;
    },
    'the SSE count and a checkpoint covering the notices',
    15_000,
  );
  t.equal(m.get('liaison_notices_accepted_total', { duplicate: 'false' }), 3);
  t.equal(m.get('liaison_notices_accepted_total', { duplicate: 'true' }), 1);
  t.equal(m.get('liaison_notices_refused_total', { code: 'envelope-malformed' }), 1);
  t.equal(m.get('liaison_notices_refused_total', { code: 'unsupported-media-type' }), 1);
  t.equal(m.get('liaison_notices_refused_total', { code: 'replay' }), 1);
  t.equal(m.get('liaison_notices_refused_total', { code: 'schema-invalid' }), 0);
  t.equal(
    m.get('liaison_ingest_step_duration_seconds_count', { step: 'store', outcome: 'ok' }),
    4,
    'store: 3 notices and the retry',
  );
  t.equal(m.get('liaison_ingest_step_duration_seconds_count', { step: 'receipt', outcome: 'ok' }), 4);
  t.equal(
    m.get('liaison_ingest_step_duration_seconds_count', { step: 'open', outcome: 'refused' }),
    1,
    'the malformed envelope failed at open',
  );
  t.equal(
    m.get('liaison_ingest_step_duration_seconds_count', { step: 'freshness', outcome: 'refused' }),
    1,
    'the old notice failed at freshness',
  );
  t.ok((m.get('liaison_ingest_step_duration_seconds_sum', { step: 'open', outcome: 'ok' }) ?? 0) > 0);
  t.equal(m.get('liaison_deliveries_total', { mode: 'pull' }), page.deliveries.length);
  t.equal(m.get('liaison_log_size'), 3);
  t.equal(m.get('liaison_stream_messages', { stream: 'NOTICES' }), 3);
  t.equal(m.get('liaison_leader', { role: 'router' }), 1);
  t.equal(m.get('liaison_leader', { role: 'checkpointer' }), 1);
  const age = m.get('liaison_checkpoint_age_seconds') ?? -1;
  t.ok(age >= 0 && age < 60, `checkpoint age ${age}`);
  t.equal(
    m.get('liaison_http_request_duration_seconds_count', { method: 'POST', route: '/v1/notices', status: '202' }),
    4,
  );

  // Labels are codes, steps, modes, routes: never ids of notices or agencies, never content.
  for (const id of ids) t.notMatch(m.text, id);
  for (const agency of ['vn-customs', 'th-customs']) t.notMatch(m.text, agency);
  t.notMatch(m.text, /Mekong|mekong-dragon-6/);
});

t.test('with NATS down, /metrics still answers quickly and says so', async (t) => {
  await nats.stop();
  const down = await waitFor(
    async () => {
      const m = await scrape();
      return m.get('liaison_nats_connected') === 0 ? m : undefined;
    },
    'liaison_nats_connected 0',
    20_000,
  );
  t.equal(down.status, 200);
  const started = Date.now();
  await scrape();
  t.ok(Date.now() - started < 5_000, 'the scrape does not wait on NATS');
});
