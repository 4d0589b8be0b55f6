import t from 'tap';
import { PassThrough } from 'node:stream';
import { pumpSse, sseFrame, type SseEvent } from '../adapters/sse/pump.js';
import { LiaisonError } from '../broker/core/errors.js';
import { throwsWith } from './helpers/assert-error.js';
import type { Agency, AgencyKey } from '../broker/registry/model.js';
import { RegistrySnapshot } from '../broker/registry/model.js';
import { checkFilter, inboxSubject } from '../broker/routing/inbox.js';
import { currentEncryptionKey, deliveryHeaders, planDeliveries } from '../broker/routing/plan.js';

const x25519 = (kid: string, extra: Partial<AgencyKey> = {}): AgencyKey => ({
  kid,
  use: 'enc',
  status: 'active',
  jwk: { kty: 'OKP', crv: 'X25519', x: 'AAAA' },
  ...extra,
});
const sig = (kid: string): AgencyKey => ({
  kid,
  use: 'sig',
  status: 'active',
  jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' },
});
const agency = (
  id: string,
  country: string,
  keys: AgencyKey[],
  roles: Agency['roles'] = ['publish', 'subscribe'],
): Agency => ({ id, country, name: id, roles, keys });

const registry = new RegistrySnapshot(
  [
    agency('vn-customs', 'VN', [sig('vn-sig'), x25519('vn-enc')]),
    agency('th-customs', 'TH', [
      sig('th-sig'),
      x25519('th-enc-old', { status: 'revoked', revoked_at: '2020-01-01T00:00:00Z' }),
      x25519('th-enc'),
    ]),
    agency('kh-police-adp', 'KH', [
      sig('kh-sig'),
      { kid: 'kh-enc', use: 'enc', status: 'active', jwk: { kty: 'EC', crv: 'P-256', x: 'A', y: 'B' } },
    ]),
    agency('la-customs', 'LA', [sig('la-sig')]), // no encryption key
    agency('cn-customs', 'CN', [sig('cn-sig'), x25519('cn-enc')], ['publish']), // may not subscribe
    agency('gb-border-force', 'GB', [sig('gb-sig'), x25519('gb-enc')]),
  ],
  [
    {
      id: 'mekong-dragon-6',
      name: 'MD6',
      status: 'active',
      members: ['vn-customs', 'th-customs', 'kh-police-adp', 'la-customs', 'cn-customs'],
      categories: [],
    },
  ],
);
const entry = (recipients: string[]) => ({
  notice_id: '6f1c1d2e-0000-4000-8000-000000000001',
  operation: 'mekong-dragon-6',
  origin: { country: 'VN', agency: 'vn-customs' },
  recipients,
});
const now = new Date('2025-06-01T00:00:00Z');

t.test('one delivery per recipient, on its own subject, to its current key', async (t) => {
  const plan = planDeliveries(entry(['th-customs', 'kh-police-adp']), registry, now);
  t.same(
    plan.deliveries.map((d) => [d.agency, d.subject, d.msgId, d.kid]),
    [
      [
        'kh-police-adp',
        'deliveries.kh-police-adp.mekong-dragon-6.VN',
        '6f1c1d2e-0000-4000-8000-000000000001:kh-police-adp',
        'kh-enc',
      ],
      [
        'th-customs',
        'deliveries.th-customs.mekong-dragon-6.VN',
        '6f1c1d2e-0000-4000-8000-000000000001:th-customs',
        'th-enc',
      ],
    ],
  );
  t.same(plan.skipped, []);
});

t.test('recipients that cannot be served are named with the reason, never delivered', async (t) => {
  const plan = planDeliveries(
    entry(['vn-customs', 'la-customs', 'cn-customs', 'gb-border-force', 'nobody', 'th-customs', 'th-customs']),
    registry,
    now,
  );
  t.same(
    plan.deliveries.map((d) => d.agency),
    ['th-customs'],
    'a duplicate recipient is delivered once',
  );
  t.same(Object.fromEntries(plan.skipped.map((s) => [s.agency, s.reason])), {
    'vn-customs': 'is-origin',
    'la-customs': 'no-encryption-key',
    'cn-customs': 'not-subscriber',
    'gb-border-force': 'not-member',
    nobody: 'agency-unknown',
  });
});

t.test('the current encryption key: active, usable type, newest', async (t) => {
  t.equal(
    currentEncryptionKey(
      [
        x25519('a', { not_before: '2024-01-01T00:00:00Z' }),
        x25519('b', { not_before: '2025-01-01T00:00:00Z' }),
        x25519('c', { not_before: '2030-01-01T00:00:00Z' }),
      ],
      now,
    )?.kid,
    'b',
    'not yet valid keys are skipped',
  );
  t.equal(
    currentEncryptionKey([x25519('a'), x25519('b', { not_after: '2024-12-31T00:00:00Z' })], now)?.kid,
    'a',
    'expired keys are skipped',
  );
  t.equal(
    currentEncryptionKey([{ kid: 'rsa', use: 'enc', status: 'active', jwk: { kty: 'RSA' } }], now),
    undefined,
    'unsupported key types are skipped',
  );
  t.equal(currentEncryptionKey([sig('s')], now), undefined, 'signing keys are never used to encrypt');
});

t.test('delivery headers are labels only', async (t) => {
  const h = deliveryHeaders(
    { ...entry([]), type: 'seizure-report', tlp: 'RED', format: 'jose', received_at: '2025-06-01T00:00:00.000Z' },
    41,
    'th-enc',
  );
  t.same(h['Liaison-Log-Index'], '41');
  t.same(h['Liaison-Notice-Id'], '6f1c1d2e-0000-4000-8000-000000000001');
  t.same(Object.keys(h).sort(), [
    'Liaison-Format',
    'Liaison-Log-Index',
    'Liaison-Notice-Id',
    'Liaison-Operation',
    'Liaison-Origin',
    'Liaison-Origin-Country',
    'Liaison-Received-At',
    'Liaison-Recipient-Kid',
    'Liaison-Tlp',
    'Liaison-Type',
  ]);
});

t.test('inbox subjects: only the caller, and no wildcard or dot from a query', async (t) => {
  t.equal(inboxSubject({ agency: 'th-customs' }), 'deliveries.th-customs.*.*');
  t.equal(inboxSubject({ agency: 'th-customs', operation: 'aircop', origin: 'GB' }), 'deliveries.th-customs.aircop.GB');
  for (const f of [
    { operation: '>' },
    { operation: 'a.b' },
    { origin: '*' },
    { origin: 'GBR' },
    { type: 'x y' },
    { operation: 'Mekong' },
  ]) {
    throwsWith(t, () => checkFilter({ agency: 'th-customs', ...f }), LiaisonError, 'bad-request', {
      what: JSON.stringify(f),
    });
  }
});

t.test('SSE pump: a reader that stops reading stops the pull from the source', async (t) => {
  let pulled = 0;
  const source = (async function* (): AsyncGenerator<SseEvent> {
    for (let i = 1; i <= 1000; i++) {
      pulled++;
      yield { id: i, event: 'delivery', data: { n: i, pad: 'x'.repeat(1000) } };
    }
  })();
  const sink = new PassThrough({ highWaterMark: 4096 }); // nobody reads it
  const abort = new AbortController();
  const done = pumpSse(source, sink, abort.signal);
  await new Promise((r) => setTimeout(r, 200));
  t.ok(
    pulled <= 10,
    `the source was asked for ${pulled} events only, not 1000 (a writable and a readable buffer of 4 KiB)`,
  );
  t.ok(sink.writableLength < 16 * 1024, `the writer holds ${sink.writableLength} bytes`);
  // The reader catches up: everything flows, in order.
  let text = '';
  sink.on('data', (c: Buffer) => (text += c.toString('utf8')));
  const sent = await done;
  t.equal(sent, 1000);
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  t.equal(ids.length, 1000);
  t.same(ids.slice(0, 3), [1, 2, 3]);
});

t.test('SSE framing: data is one JSON line, so content cannot break the framing', async (t) => {
  const f = sseFrame({ id: 7, event: 'delivery', data: { summary: 'line1\n\nid: 99\ndata: x' } });
  t.equal(f.split('\n\n').length, 2, 'one event');
  t.match(f, /^id: 7\nevent: delivery\ndata: \{.*\}\n\n$/);
});

t.test('SSE pump: an abort while waiting for drain ends the pump', async (t) => {
  const source = (async function* (): AsyncGenerator<SseEvent> {
    for (let i = 1; ; i++) yield { id: i, event: 'delivery', data: 'x'.repeat(2000) };
  })();
  const sink = new PassThrough({ highWaterMark: 1024 });
  const abort = new AbortController();
  const done = pumpSse(source, sink, abort.signal);
  setTimeout(() => abort.abort(), 100);
  const sent = await done;
  t.ok(sent <= 2, `stopped after ${sent}`);
});
