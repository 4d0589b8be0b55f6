/**
 * The cache of each certificate's encryption key ids (adapters/e2e-openpgp/
 * encryption-key-ids.ts): the same answers as openpgp.js getEncryptionKey
 * asked afresh, at every instant around each of a certificate's breakpoints;
 * a certificate changed under the same fingerprint is never served from it;
 * and within its window no binding signature is checked again. The registry's
 * own revocation, on a real nats-server, is in test/e2e-openpgp.test.ts.
 */
import t from 'tap';
import { generateKey, PublicKey, readKey, readPrivateKey, type PrivateKey, type SecretKeyPacket } from 'openpgp';
import { breakpointsOf, encryptionKeyIdsAt, windowAround } from '../adapters/e2e-openpgp/encryption-key-ids.js';
import { encryptionKeyOwners } from '../adapters/e2e-openpgp/recipient-keys.js';
import type { Agency, OpenPgpAgencyKey } from '../broker/registry/model.js';

const DAY = 86_400_000;
const base = new Date(Math.floor((Date.now() - 10 * DAY) / 1000) * 1000);
const at = (ms: number) => new Date(ms);

/** Ed25519 primary; cv25519 subkey A made at `base`, expiring 5 days later; subkey B made 3 days after `base`. */
async function certificate(): Promise<PrivateKey> {
  const { privateKey } = await generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'cache test' }],
    date: base,
    subkeys: [{ keyExpirationTime: 5 * 86_400 }],
    format: 'object',
  });
  return privateKey.addSubkey({ date: new Date(+base + 3 * DAY) });
}

const recordOf = (key: PrivateKey | PublicKey): OpenPgpAgencyKey => ({
  kid: key.getFingerprint().toUpperCase(),
  use: 'sig',
  format: 'openpgp',
  armored: key.toPublic().armor(),
  status: 'active',
});

/** What ingest did before the cache: every key id of a freshly read certificate, through getEncryptionKey. */
async function uncached(armored: string, when: Date): Promise<string[]> {
  const key = await readKey({ armoredKey: armored });
  const ids: string[] = [];
  for (const id of key.getKeyIDs())
    try {
      await key.getEncryptionKey(id, when);
      ids.push(id.toHex().toUpperCase());
    } catch {
      // not valid then
    }
  return ids.sort();
}

const key = await certificate();
const record = recordOf(key);

t.test('the cached ids are those getEncryptionKey gives afresh, around every breakpoint', async (t) => {
  const points = breakpointsOf(await readKey({ armoredKey: record.armored }));
  t.ok(points.includes(+base + 5 * DAY), "subkey A's expiry is a breakpoint");
  t.ok(points.includes(+base + 3 * DAY), "subkey B's creation is a breakpoint");
  const times = [+base - DAY, Date.now()];
  for (const b of points) for (const d of [-1001, -1000, -1, 0, 1, 999, 1000, 1500, DAY]) times.push(b + d);
  // In order, then out of order: each answer must not depend on what the cache held before.
  const orders = [[...times].sort((a, b) => a - b), [...times].sort((a, b) => b - a), times];
  let differ = 0;
  for (const order of orders)
    for (const ms of order) {
      const got = [...(await encryptionKeyIdsAt(record, at(ms)))].sort();
      const want = await uncached(record.armored, at(ms));
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        differ++;
        t.same(got, want, `at ${new Date(ms).toISOString()} (${ms % 1000} ms)`);
      }
    }
  t.equal(differ, 0, `${orders.length * times.length} instants, each the same answer`);
  const [a, b] = key.subkeys.map((s) => s.getKeyID().toHex().toUpperCase());
  t.same([...(await encryptionKeyIdsAt(record, at(+base + DAY)))], [a], 'before B exists: A only');
  t.same([...(await encryptionKeyIdsAt(record, at(+base + 4 * DAY)))].sort(), [a, b].sort(), 'both');
  t.same([...(await encryptionKeyIdsAt(record, at(+base + 6 * DAY)))], [b], 'A expired: B only');
});

t.test('a subkey revoked in the certificate is refused at once, under the same fingerprint', async (t) => {
  const now = new Date();
  const [, b] = key.subkeys.map((s) => s.getKeyID().toHex().toUpperCase());
  const agency = (r: OpenPgpAgencyKey): Agency[] => [
    { id: 'th-customs', country: 'TH', name: 'Thai customs', roles: [], keys: [], openpgp_keys: [r] },
  ];
  t.same(await encryptionKeyOwners(agency(record), [b!], now), [{ agency: 'th-customs', kid: record.kid }]);
  const revoked = await readPrivateKey({ armoredKey: key.armor() });
  const primary = key.keyPacket as SecretKeyPacket;
  revoked.subkeys[1] = await key.subkeys[1]!.revoke(primary, undefined, new Date(+now - 60_000));
  const replaced = recordOf(revoked);
  t.equal(replaced.kid, record.kid, 'the same fingerprint');
  t.not(replaced.armored, record.armored, 'other bytes');
  t.same(await encryptionKeyOwners(agency(replaced), [b!], now), [undefined], 'refused at the same instant');
  t.same(await uncached(replaced.armored, now), [], 'as getEncryptionKey says');
  t.same(await encryptionKeyOwners(agency(record), [b!], now), [{ agency: 'th-customs', kid: record.kid }]);
  t.same(
    await encryptionKeyOwners(agency({ ...record, kid: 'A'.repeat(40) }), [b!], now),
    [undefined],
    'a record whose kid is not the fingerprint holds no key',
  );
});

t.test('within its window a certificate is not checked again', async (t) => {
  const calls = { n: 0 };
  const original: PublicKey['getEncryptionKey'] = Reflect.get(PublicKey.prototype, 'getEncryptionKey');
  PublicKey.prototype.getEncryptionKey = function (this: PublicKey, ...args) {
    calls.n++;
    return original.apply(this, args);
  };
  t.teardown(() => void (PublicKey.prototype.getEncryptionKey = original));
  const others = await Promise.all([certificate(), certificate()]);
  const agencies: Agency[] = others.map((k, i) => ({
    id: `a${i}`,
    country: 'VN',
    name: `A${i}`,
    roles: [],
    keys: [],
    openpgp_keys: [recordOf(k)],
  }));
  const ids = others.map((k) => k.subkeys[1]!.getKeyID().toHex().toUpperCase());
  const when = new Date(+base + 4 * DAY + 1500);
  const want = agencies.map((a) => ({ agency: a.id, kid: a.openpgp_keys![0]!.kid }));
  t.same(await encryptionKeyOwners(agencies, ids, when), want);
  t.ok(calls.n > 0, 'resolved once');
  calls.n = 0;
  t.same(await encryptionKeyOwners(agencies, ids, new Date(+when + DAY / 2)), want, 'later, same window');
  t.equal(calls.n, 0, 'no binding signature checked again');
  await encryptionKeyOwners(agencies, ids, new Date(+base + 6 * DAY));
  t.ok(calls.n > 0, 'past a breakpoint: resolved again');
});

t.test('windowAround: between breakpoints, never within their seconds', async (t) => {
  const b = [1000, 5000];
  t.same(windowAround(b, 500), { from: -Infinity, until: 1000 });
  t.equal(windowAround(b, 1000), undefined);
  t.equal(windowAround(b, 1999), undefined);
  t.same(windowAround(b, 2000), { from: 2000, until: 5000 });
  t.same(windowAround(b, 4999), { from: 2000, until: 5000 });
  t.equal(windowAround(b, 5500), undefined);
  t.same(windowAround(b, 6000), { from: 6000, until: Infinity });
  t.same(windowAround([], 6000), { from: -Infinity, until: Infinity });
});
