/**
 * An envelope format name that is not registered (broker/formats/registry.ts) fails
 * loudly wherever the broker meets one: the audit reports the entry as bad (not
 * "not checked"), the router refuses the notice, ingest refuses an adapter of
 * that format, the plan does not deliver in it. Pure: no NATS.
 */
import t from 'tap';
import pino from 'pino';
import { signNotice } from '../broker/agency-client/seal.js';
import { auditLogWithOrigins, checkOriginSignatures } from '../broker/audit/key-history.js';
import type { EnvelopeAdapter } from '../broker/core/envelope.js';
import { createIngestPipeline, type PipelineDeps } from '../broker/ingest/pipeline.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { ENTRY_HEADER } from '../broker/log/append.js';
import { makeKeyPair } from '../broker/keys/jwk.js';
import { encodeEntry, type NoticeLogEntry } from '../broker/log/entry.js';
import type { NatsBus } from '../broker/nats/connection.js';
import { RegistrySnapshot, type Agency } from '../broker/registry/model.js';
import { toInboxDelivery } from '../broker/routing/inbox.js';
import { DELIVERY_HEADERS, planDeliveries } from '../broker/routing/plan.js';
import { Router } from '../broker/routing/router.js';

const enc = new TextEncoder();
const key = await makeKeyPair('Ed25519', 'vn-sig-1');
const signed = enc.encode(await signNotice(enc.encode('{"id":"x"}'), { ...key.privateJwk }));
// A notice entry as ingest writes it, but naming a format nobody registered.
const entry = {
  v: 1,
  kind: 'notice',
  notice_id: '00000000-0000-4000-8000-000000000001',
  sha256: sha256Hex(signed),
  format: 'smime',
  signer_kid: 'vn-sig-1',
  origin: { country: 'VN', agency: 'vn' },
  operation: 'op',
  type: 'seizure-report',
  tlp: 'AMBER',
  received_at: '2025-06-01T00:00:00.000Z',
  recipients: ['th'],
} as unknown as NoticeLogEntry;

t.test('audit: a held notice whose entry names an unknown format is a bad entry, not "not checked"', async (t) => {
  const history = [
    {
      agency: 'vn',
      kid: 'vn-sig-1',
      use: 'sig' as const,
      format: 'jose' as const,
      jwk: key.publicJwk as { kty: string },
      status: 'active' as const,
    },
  ];
  const r = await checkOriginSignatures({
    entries: [{ index: 0, bytes: encodeEntry(entry) }],
    notices: [{ noticeId: entry.notice_id, signed }],
    agencyKeys: history,
  });
  t.same([r.checked, r.notChecked], [1, 0], 'counted as checked');
  t.same(
    r.problems.map((p) => [p.code, p.index]),
    [['notice-format-unknown', 0]],
  );
  t.match(r.problems[0]?.message, /"smime" is not a registered envelope format/);
});

t.test(
  'audit without a key history: a held notice whose entry names an unknown format is still a bad entry',
  async (t) => {
    // An archive of format 1 (or the API) carries no agency key history: signatures cannot be checked, but the format can.
    const input = {
      origin: 'b',
      brokerKeys: [],
      entries: [{ index: 0, bytes: encodeEntry(entry) }],
      checkpoints: [],
      notices: [{ noticeId: entry.notice_id, signed }],
    };
    const r = await auditLogWithOrigins(input);
    t.same([r.signaturesChecked, r.signaturesNotChecked], [1, 0], 'counted as checked, never as not checked');
    t.same(
      r.problems.filter((p) => p.code === 'notice-format-unknown').map((p) => p.index),
      [0],
    );
    t.equal(r.firstBadEntry, 0);
    t.equal(r.ok, false);
  },
);

t.test('router: a stored notice whose entry names an unknown format is refused with format-unknown', async (t) => {
  const router = new Router({
    bus: {} as NatsBus,
    registry: () => RegistrySnapshot.empty(),
    logger: pino({ level: 'silent' }),
    ackWaitSeconds: 5,
    duplicateWindowSeconds: 120,
    replicas: 1,
    storageKeys: { storageKey: undefined, storageKeyById: () => undefined },
  });
  const headers = {
    get: (h: string) => (h === ENTRY_HEADER ? Buffer.from(encodeEntry(entry)).toString('base64url') : ''),
  };
  const m = {
    data: signed,
    headers,
    seq: 1,
    info: { timestampNanos: Date.now() * 1e6, redelivered: false },
  } as unknown as Parameters<Router['route']>[0];
  await t.rejects(router.route(m), { code: 'format-unknown', message: /"smime" is not registered/ });
  await router.close();
});

t.test('ingest: an adapter of an unregistered format is refused at start', async (t) => {
  const adapter: EnvelopeAdapter = {
    format: 'smime',
    mediaTypes: ['application/pkcs7-mime'],
    open: () => Promise.reject(new Error('never called')),
  };
  const deps = { adapters: [adapter], registry: () => RegistrySnapshot.empty() } as unknown as PipelineDeps;
  t.throws(() => createIngestPipeline(deps), { name: 'LiaisonError', code: 'format-unknown' });
});

t.test('plan: an agency whose delivery_format is not registered gets nothing, and is named', async (t) => {
  const th: Agency = {
    id: 'th',
    country: 'TH',
    name: 'th',
    roles: ['subscribe'],
    delivery_format: 'smime',
    keys: [{ kid: 'th-enc', use: 'enc', status: 'active', jwk: { kty: 'OKP', crv: 'X25519', x: 'AAAA' } }],
  };
  const registry = new RegistrySnapshot(
    [th],
    [{ id: 'op', name: 'op', status: 'active', members: ['vn', 'th'], categories: [] }],
  );
  const plan = planDeliveries(entry, registry, new Date('2025-06-01T00:00:00Z'));
  t.same(plan.deliveries, []);
  t.same(plan.skipped, [{ agency: 'th', reason: 'format-unknown' }]);
});

t.test(
  'inbox: a stored delivery labelled with an unregistered format is junk, never served as the default format',
  async (t) => {
    const labels: Record<string, string> = {
      [DELIVERY_HEADERS.noticeId]: entry.notice_id,
      [DELIVERY_HEADERS.operation]: 'op',
      [DELIVERY_HEADERS.originCountry]: 'VN',
      [DELIVERY_HEADERS.origin]: 'vn',
      [DELIVERY_HEADERS.type]: 'seizure-report',
      [DELIVERY_HEADERS.tlp]: 'AMBER',
      [DELIVERY_HEADERS.logIndex]: '0',
      [DELIVERY_HEADERS.receivedAt]: entry.received_at,
    };
    const headers = (extra: Record<string, string>) =>
      ({ get: (h: string) => ({ ...labels, ...extra })[h] ?? '' }) as unknown as Parameters<typeof toInboxDelivery>[2];
    const jwe = enc.encode('aGVhZGVy.a2V5.aXY.Y2lwaGVy.dGFn');
    t.match(
      toInboxDelivery(1, jwe, headers({})),
      { jwe: 'aGVhZGVy.a2V5.aXY.Y2lwaGVy.dGFn' },
      'unlabelled: the default format',
    );
    t.equal(
      toInboxDelivery(2, jwe, headers({ [DELIVERY_HEADERS.deliveryFormat]: 'smime' })),
      null,
      'labelled smime: not a delivery',
    );
  },
);
