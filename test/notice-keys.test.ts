/**
 * A notice's own key in NOTICE_KEYS (broker/vault/notice-keys.ts) on a real
 * nats-server: stored once (create-only, so a retry seals with the key already
 * there), read back strictly, and crypto-shredded: a tombstone that names the
 * erasure event, and every earlier record overwritten in the store itself, so
 * that the wrapped key's bytes are on no disk block any more.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { LiaisonError } from '../broker/core/errors.js';
import { createLogger } from '../broker/core/logger.js';
import { STREAMS } from '../broker/core/stream-names.js';
import { connectNats } from '../broker/nats/connection.js';
import { ensureStreams } from '../broker/nats/streams.js';
import {
  destroyNoticeKey,
  noticeKeySubject,
  readNoticeKey,
  storeNoticeKey,
  type WrappedNoticeKey,
} from '../broker/vault/notice-keys.js';
import { rejectsWith } from './helpers/assert-error.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const bus = await connectNats({
  servers: nats.url,
  name: 'notice-keys-test',
  publishTimeoutMs: 2000,
  logger: createLogger('silent'),
  auth: {},
});
t.teardown(() => bus.close());
await ensureStreams(bus.jsm, { duplicateWindowSeconds: 120, replicas: 1 });

const wrapped = (marker: string): WrappedNoticeKey => ({
  v: 1,
  kek: 'storage-1',
  wrapped: Buffer.from(marker.padEnd(40, '-')).toString('base64url'),
});

/** Every file of the server's store, concatenated: what a disk image or a copy of the store dir holds. */
function storeBytes(): Buffer {
  const files: Buffer[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(readFileSync(p));
    }
  };
  walk(nats.storeDir);
  return Buffer.concat(files);
}
const onDisk = (marker: string) => storeBytes().includes(Buffer.from(JSON.stringify(wrapped(marker))));

t.test('stored once: the first key wins, a second store gets it back', async (t) => {
  const id = '0b3c1c5e-6b0e-4c2a-9a55-000000000001';
  t.same(await readNoticeKey(bus, id), null, 'no key before it is stored');
  const first = await storeNoticeKey(bus, id, wrapped('first-key'));
  t.equal(first.created, true);
  const second = await storeNoticeKey(bus, id, wrapped('second-key'));
  t.equal(second.created, false, 'not stored again');
  t.same(second.stored, wrapped('first-key'), 'the key already there is the one to use');
  t.same(await readNoticeKey(bus, id), wrapped('first-key'));
});

t.test('destroyed: a tombstone naming the event, and the key overwritten on disk', async (t) => {
  const id = '0b3c1c5e-6b0e-4c2a-9a55-000000000002';
  await storeNoticeKey(bus, id, wrapped('shred-me-key'));
  t.ok(onDisk('shred-me-key'), 'the wrapped key is in the store before');
  const erasure = { event_id: 'evt-1', erased_at: '2026-12-07T15:00:00.000Z' };
  const tombstone = { v: 1, erased_by: 'evt-1', erased_at: erasure.erased_at };
  const tomb = await destroyNoticeKey(bus, id, erasure);
  t.same(tomb, tombstone);
  t.same(await readNoticeKey(bus, id), tombstone, 'readers see who erased it');
  const first = await bus.nextMessage(STREAMS.noticeKeys, 1, noticeKeySubject(id));
  t.same(first && new TextDecoder().decode(first.data), JSON.stringify(tombstone), 'only the tombstone left');
  t.notOk(onDisk('shred-me-key'), 'the wrapped key is on no block of the store');
  t.same(
    await destroyNoticeKey(bus, id, { event_id: 'evt-2', erased_at: '2026-12-07T16:00:00.000Z' }),
    tomb,
    'a repeat keeps the first erasure',
  );
});

t.test('a notice without a key can still be erased (its id stays known as erased)', async (t) => {
  const id = '0b3c1c5e-6b0e-4c2a-9a55-000000000003';
  const tombstone = { v: 1, erased_by: 'evt-3', erased_at: '2026-12-07T15:00:00.000Z' };
  t.same(await destroyNoticeKey(bus, id, { event_id: 'evt-3', erased_at: tombstone.erased_at }), tombstone);
  t.same(await storeNoticeKey(bus, id, wrapped('late')), { stored: tombstone, created: false }, 'no key after erasure');
});

t.test('junk in the stream is never a key', async (t) => {
  for (const [i, junk] of [
    'not json',
    '[]',
    '{"v":1,"kek":"k"}',
    '{"v":2,"kek":"k","wrapped":"AA"}',
    '{"v":1,"kek":"k","wrapped":"A A"}',
  ].entries()) {
    const id = `0b3c1c5e-6b0e-4c2a-9a55-00000000010${i}`;
    await bus.publish(noticeKeySubject(id), new TextEncoder().encode(junk), {});
    await rejectsWith(t, readNoticeKey(bus, id), LiaisonError, 'log-state-invalid', { what: junk });
  }
});

t.test('a hostile notice id is refused before it reaches a subject', async (t) => {
  await rejectsWith(t, readNoticeKey(bus, 'a.b'), LiaisonError, 'bad-request');
  await rejectsWith(t, readNoticeKey(bus, '*'), LiaisonError, 'bad-request');
});
