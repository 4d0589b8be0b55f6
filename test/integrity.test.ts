/**
 * The integrity ledger (broker/core/integrity.ts), the stored-status rule
 * (broker/nats/stored-status.ts), and /readyz and the metrics for a halted
 * checkpointer, on a real nats-server (issue 20).
 */
import t from 'tap';
import Fastify from 'fastify';
import { Writable } from 'node:stream';
import { connect, headers as natsHeaders } from 'nats';
import { createLogger } from '../broker/core/logger.js';
import {
  FINDINGS_KEPT_PER_SOURCE,
  IntegrityLedger,
  integrity,
  kvWhere,
  streamWhere,
} from '../broker/core/integrity.js';
import { healthRoutes } from '../broker/http/routes/health.js';
import { Metrics } from '../broker/metrics/metrics.js';
import { connectNats } from '../broker/nats/connection.js';
import { ensureStreams } from '../broker/nats/streams.js';
import { isStoredStatus, STORED_STATUS_HEADER } from '../broker/nats/stored-status.js';
import { startTestNats } from './helpers/nats.js';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, logger: createLogger('info', sink) };
}

t.test(
  'a finding is logged at error without content, counted, kept bounded per source, and the same item is counted not repeated',
  async (t) => {
    const ledger = new IntegrityLedger();
    const { lines, logger } = capture();
    const told: string[] = [];
    ledger.onFinding((f) => void told.push(f.where));
    ledger.report(logger, 'notices', streamWhere('NOTICES', 7), 'not JSON');
    ledger.report(logger, 'notices', streamWhere('NOTICES', 7), 'not JSON');
    await new Promise((r) => setImmediate(r));
    const line = JSON.parse(lines.at(-1) as string) as Record<string, unknown>;
    t.match(line, { level: 50, event: 'integrity-finding', source: 'notices', where: 'NOTICES#7', reason: 'not JSON' });
    t.same(
      ledger.list().map((f) => [f.where, f.count]),
      [['NOTICES#7', 2]],
      'one entry, counted twice',
    );
    t.equal(ledger.totals().get('notices'), 2);
    t.same(told, ['NOTICES#7', 'NOTICES#7'], "listeners (the background thread's forwarder) told each time");
    for (let i = 0; i < FINDINGS_KEPT_PER_SOURCE + 5; i++)
      ledger.report(undefined, 'registry', kvWhere('registry', `agency.a${i}`, i + 1), 'not JSON');
    const kept = ledger.list().filter((f) => f.source === 'registry');
    t.equal(kept.length, FINDINGS_KEPT_PER_SOURCE, 'bounded per source');
    t.equal(kept[0]?.where, 'registry/agency.a5@6', 'the oldest dropped');
    t.equal(ledger.totals().get('registry'), FINDINGS_KEPT_PER_SOURCE + 5, 'the count keeps counting');
    t.throws(
      () => ledger.add({ source: 'nope' as never, where: 'x', reason: 'y', at: '', count: 1 }),
      /unknown integrity source/,
    );
  },
);

t.test(
  "a status line is a stored message only with a $JS.ACK reply or a direct get's stream headers, and an empty body",
  async (t) => {
    const direct = natsHeaders(404, 'No Messages');
    direct.set('Nats-Stream', 'KV_registry');
    direct.set('Nats-Sequence', '16');
    t.ok(
      isStoredStatus('$JS.ACK.KV_registry.x.1.16.16.0.0', 0, natsHeaders(404, 'No Messages')),
      'delivered by a consumer',
    );
    t.ok(isStoredStatus('', 0, direct), 'answered by a direct get');
    t.notOk(
      isStoredStatus('', 0, natsHeaders(404, 'No Messages')),
      "the server's own 404 (a pull with nothing, a direct get of nothing)",
    );
    t.notOk(
      isStoredStatus('$JS.ACK.S.c.1.1.1.0.0', 3, natsHeaders(404, 'No Messages')),
      'a body: nats.js already takes it for data',
    );
  },
);

t.test(
  "on a real connection, a stored 404 reaches a consumer as data with its status kept aside; the server's own 404 stays a status",
  async (t) => {
    const nats = await startTestNats(t);
    const { logger } = capture();
    const bus = await connectNats({
      servers: nats.url,
      name: 'integrity-test',
      publishTimeoutMs: 2000,
      logger,
      auth: {},
    });
    t.teardown(() => bus.close());
    const kv = await bus.kv('poison-probe', { history: 4 });
    const nc = await connect({ servers: nats.url });
    t.teardown(() => nc.close());
    await nc.jetstream().publish('$KV.poison-probe.k', new Uint8Array(0), { headers: natsHeaders(404, 'No Messages') });
    const e = await kv.get('k');
    t.ok(e, 'a direct get finds the stored message (it answered "not found" before)');
    t.equal(e?.value.length, 0);
    const iter = await kv.watch({ key: 'k' });
    for await (const w of iter) {
      t.equal(w.key, 'k', 'a watch yields it instead of throwing');
      t.equal(w.value.length, 0);
      break;
    }
    t.equal(await kv.get('missing'), null, 'a key never written is still not found');
    const stream = await bus.js.consumers.get('KV_poison-probe');
    const m = await stream.next();
    t.equal(m?.headers?.get(STORED_STATUS_HEADER), '404', 'the status is kept aside in its header');
    t.equal(m?.headers?.code, 0, 'and no longer reads as a status');
  },
);

t.test(
  '/readyz: ready; degraded (still 200) with a halted checkpointer and findings; and liaison_checkpointer_halted',
  async (t) => {
    const nats = await startTestNats(t);
    const { logger } = capture();
    const bus = await connectNats({ servers: nats.url, name: 'readyz-test', publishTimeoutMs: 2000, logger, auth: {} });
    t.teardown(() => bus.close());
    await ensureStreams(bus.jsm, { duplicateWindowSeconds: 120, replicas: 1, deliveriesMaxAgeSeconds: 3600 });
    const status = {
      leader: true,
      treeSize: 42,
      checkpointSize: 41,
      halted: null as { index: number; reason: string } | null,
    };
    const checkpointer = { status };
    const app = Fastify();
    await app.register(healthRoutes, { bus, checkpointer: () => checkpointer });
    t.teardown(() => app.close());
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.attach({ bus, router: null, checkpointer, routerConsumer: 'router', threads: () => ({}) });

    // This process's ledger may hold findings of the tests above only if they used it: they did not.
    t.equal(integrity.list().length, 0);
    let r = await app.inject({ method: 'GET', url: '/readyz' });
    t.equal(r.statusCode, 200);
    t.equal(r.json().status, 'ready');
    t.notOk('problems' in r.json());
    t.same(Object.keys(r.json()), ['status'], 'ready or not and why, nothing about the traffic (no message counts)');
    t.match(await metrics.render(), /liaison_checkpointer_halted 0/);

    status.halted = { index: 41, reason: 'entry signature invalid' };
    integrity.report(undefined, 'deliveries', streamWhere('DELIVERIES', 9), 'empty body');
    integrity.report(undefined, 'registry', kvWhere('registry', 'agency.th-customs', 3), 'not a registry record');
    r = await app.inject({ method: 'GET', url: '/readyz' });
    t.equal(r.statusCode, 200, 'degraded is still 200: the gateway ingests');
    t.equal(r.json().status, 'degraded');
    t.match(r.json().problems, [
      { kind: 'checkpointer-halted', source: 'log', where: 'log index 41', reason: 'entry signature invalid' },
      {
        kind: 'integrity-finding',
        source: 'registry',
        where: 'registry@3',
        reason: 'not a registry record',
        at: String,
        count: 1,
      },
      {
        kind: 'integrity-finding',
        source: 'deliveries',
        where: 'DELIVERIES#9',
        reason: 'empty body',
        at: String,
        count: 1,
      },
    ]);
    t.notMatch(
      r.body,
      /th-customs/,
      "a KV finding's key (here an agency id) is in the log line, not in the public /readyz",
    );
    const text = await metrics.render();
    t.match(text, /liaison_checkpointer_halted 1/);
    t.match(text, /liaison_integrity_findings_total\{source="deliveries"\} 1/);
    t.match(text, /liaison_integrity_findings_total\{source="tiles"\} 0/, 'every source from 0');

    await nats.stop();
    await new Promise((res) => setTimeout(res, 300));
    r = await app.inject({ method: 'GET', url: '/readyz' });
    t.equal(r.statusCode, 503, 'NATS away is still 503');
  },
);
