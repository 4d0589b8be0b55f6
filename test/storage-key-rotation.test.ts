import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { archiveToAuditInput } from '../broker/audit/archive.js';
import { exportArchive } from '../broker/audit/export.js';
import { auditLog } from '../broker/audit/verify.js';
import { generateBrokerKeyFile } from '../broker/keys/broker-keys.js';
import { decodeEntry } from '../broker/log/entry.js';
import { STREAMS } from '../broker/core/stream-names.js';
import { destroyNoticeKey, isErased, noticeKeySubject, readNoticeKey } from '../broker/vault/notice-keys.js';
import { openStoredNotice } from '../broker/vault/open.js';
import { sampleNotice, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

/**
 * Storage keys (notices sealed at rest): a keyring from before sealing gets
 * its first storage key on start, as a logged broker key change; a rotation
 * re-wraps every stored notice key under the new key and drops the old one
 * from the keyring, and notices sent before and after it still route and
 * audit.
 */
t.setTimeout(240_000);
const nats = await startTestNats(t);
// A data dir whose keyring predates sealing at rest: no storage keys.
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-data-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
const legacy = await generateBrokerKeyFile();
delete legacy.storage;
mkdirSync(join(dataDir, 'broker'), { recursive: true, mode: 0o700 });
writeFileSync(join(dataDir, 'broker', 'keys.json'), JSON.stringify(legacy), { mode: 0o600 });
const g = await startTestGateway(
  t,
  nats.url,
  { checkpointEveryEntries: 1, checkpointIntervalMs: 200, storageKeyDropAfterSeconds: 0 },
  { dataDir },
);
const OPERATOR = 'hub-operator';

const registryEvents = async (gw: TestGateway) => {
  const out: { type: string; subject: string }[] = [];
  const info = await gw.gw.bus.jsm.streams.info(STREAMS.log);
  for (let seq = 1; seq <= info.state.last_seq; seq++) {
    const m = await gw.gw.bus.getMessage(STREAMS.log, seq);
    const e = m && (decodeEntry(m.data) as unknown as Record<string, unknown>);
    if (e?.kind === 'registry') out.push({ type: String(e.event), subject: JSON.stringify(e.subject) });
  }
  return out;
};
const notice = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'AMBER',
  });
/** The NOTICES message of notice `id`. */
const storedNotice = (id: string) =>
  waitFor(async () => {
    for (let seq = 1; ; seq++) {
      const x = await g.gw.bus.nextMessage(STREAMS.notices, seq, '>');
      if (!x) return undefined;
      if (x.header?.get('Liaison-Notice-Id') === id) return x;
      seq = x.seq;
    }
  }, `NOTICES holds ${id}`);
const deliveredTo = async (id: string) =>
  waitFor(
    async () => {
      const kv = await g.gw.bus.bucket('delivered', { bindOnly: true });
      return (await kv.get(id)) ? true : undefined;
    },
    `delivered record of ${id}`,
    20_000,
  );

t.test('a keyring from before sealing gets its first storage key on start, logged', async (t) => {
  t.ok(g.gw.keyring.storageKey, 'the gateway has a storage key');
  t.match(g.gw.keyring.storageKey!.kid, /^storage-[0-9a-f]{16}$/);
  const events = await registryEvents(g);
  t.same(
    events.filter((e) => e.type === 'broker-storage-key-rotated').length,
    1,
    'one broker-storage-key-rotated event in the log',
  );
});

t.test('notices before and after a rotation route and audit; the old key leaves the keyring', async (t) => {
  const before = notice();
  t.equal((await g.post((await g.seal(before, 'vn-customs')).jwe)).status, 202);
  await deliveredTo(before.id);
  const oldKid = g.gw.keyring.storageKey!.kid;
  const rec = await readNoticeKey(g.gw.bus, before.id);
  t.match(rec, { kek: oldKid }, 'wrapped under the first storage key');

  const token = await makeClientAssertion(OPERATOR, g.creds(OPERATOR).signing, g.config.brokerId);
  const res = await g.gw.app.inject({
    method: 'POST',
    url: '/v1/admin/broker/keys/storage/rotate',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ reason: 'yearly' }),
  });
  t.equal(res.statusCode, 201, res.body);
  t.equal(res.json().type, 'broker-storage-key-rotated');
  t.notMatch(res.body, /"k":/, 'the answer names no key bytes');
  const newKid = g.gw.keyring.storageKey!.kid;
  t.not(newKid, oldKid, 'a new storage key is current');
  t.equal(g.gw.keyring.storageKeyById(oldKid), undefined, 'the old storage key is gone from the keyring');
  t.same(
    (g.gw.keyring.file.storage ?? []).map((k) => k.kid),
    [newKid],
    'only the new key is kept',
  );
  t.equal((await registryEvents(g)).filter((e) => e.type === 'broker-storage-key-rotated').length, 2, 'logged');

  const after = await readNoticeKey(g.gw.bus, before.id);
  t.match(after, { kek: newKid }, 'the earlier notice is re-wrapped under the new key');
  // Only the new record is left on the subject: the old one was erased.
  const first = await g.gw.bus.nextMessage(STREAMS.noticeKeys, 1, noticeKeySubject(before.id));
  const last = await g.gw.bus.lastMessage(STREAMS.noticeKeys, noticeKeySubject(before.id));
  t.equal(first?.seq, last?.seq, 'the record under the old key is erased');

  const later = notice();
  t.equal((await g.post((await g.seal(later, 'vn-customs')).jwe)).status, 202);
  await deliveredTo(later.id);
  t.match(await readNoticeKey(g.gw.bus, later.id), { kek: newKid });
  for (const n of [before, later]) {
    const stored = await storedNotice(n.id);
    const opened = await openStoredNotice(g.gw.bus, g.gw.keyring, n.id, stored.data);
    t.equal(opened.kind, 'sealed', `${n === before ? 'the earlier' : 'the later'} notice opens`);
  }
  // The audit: the checkpoint covers both, and both notices are checked against their entries.
  const size = (await g.gw.bus.jsm.streams.info(STREAMS.log)).state.messages;
  await waitFor(
    async () => ((g.gw.checkpointer?.status.checkpointSize ?? 0) >= size ? true : undefined),
    'checkpoint',
    20_000,
  );
  const archive = await exportArchive(g.gw.bus, g.config.brokerId, g.gw.keyring.verificationKeys, g.gw.keyring);
  const r = auditLog(archiveToAuditInput(JSON.parse(JSON.stringify(archive))));
  t.same(r.problems, []);
  t.equal(r.noticesChecked, 2, 'both notices checked against the log');
  // A second run has nothing left to do (idempotent).
  t.same(await g.gw.admin.finishStorageRotation(), { rewrapped: 0, dropped: [] });
});

t.test('the one reader: a legacy clear body reads as is; an erased one says by whom; junk is refused', async (t) => {
  const clear = new TextEncoder().encode('eyJhbGciOiJFZERTQSJ9.e30.c2ln');
  const id = randomUUID();
  t.same(await openStoredNotice(g.gw.bus, g.gw.keyring, id, clear), { kind: 'clear', signed: clear });
  const n = notice();
  t.equal((await g.post((await g.seal(n, 'vn-customs')).jwe)).status, 202);
  const stored = await storedNotice(n.id);
  await t.rejects(openStoredNotice(g.gw.bus, g.gw.keyring, randomUUID(), stored.data), {
    code: 'log-state-invalid',
  });
  const tomb = await destroyNoticeKey(g.gw.bus, n.id, { event_id: 'e-1', erased_at: new Date().toISOString() });
  t.ok(isErased(tomb));
  t.match(await openStoredNotice(g.gw.bus, g.gw.keyring, n.id, stored.data), { kind: 'erased', erasedBy: 'e-1' });
});
