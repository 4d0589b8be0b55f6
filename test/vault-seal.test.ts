import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import {
  newDataKey,
  openSealed,
  parseSealed,
  SealError,
  sealedHeader,
  sealNotice,
  unwrapDataKey,
  wrapDataKey,
  type StorageKey,
} from '../broker/vault/seal.js';

const enc = new TextEncoder();

function sealFails(t: Test, what: string, f: () => unknown): void {
  try {
    f();
    t.fail(`${what}: accepted`);
  } catch (e) {
    t.ok(e instanceof SealError && e.code === 'log-state-invalid', what);
  }
}
const idA = '0b5e0d1c-7a3f-4f43-9b1e-2f2b6c1d9a01';
const idB = '0b5e0d1c-7a3f-4f43-9b1e-2f2b6c1d9a02';
const signed = enc.encode('eyJhbGciOiJFZERTQSJ9.eyJzdW1tYXJ5Ijoi2LbYqNi3In0.c2ln');
const storage: StorageKey = { kid: 'storage-a', key: new Uint8Array(randomBytes(32)) };
const other: StorageKey = { kid: 'storage-a', key: new Uint8Array(randomBytes(32)) };

t.test('a sealed notice opens under its data key, and names its notice', async (t) => {
  const dk = newDataKey();
  const sealed = sealNotice(idA, 'jose', signed, dk);
  t.notOk(Buffer.from(sealed).includes(Buffer.from(signed)), 'no clear bytes');
  t.same(sealedHeader(sealed), { noticeId: idA, format: 'jose' });
  t.same(openSealed(idA, sealed, dk), signed);
  t.not(Buffer.from(sealNotice(idA, 'jose', signed, dk)).toString(), Buffer.from(sealed).toString(), 'fresh IV');
});

t.test('a sealed notice read in place, parsed once: its parts open as its bytes do', async (t) => {
  const dk = newDataKey();
  const sealed = sealNotice(idA, 'jose', signed, dk);
  // A message body is often a view into a larger buffer (the NATS client's read): the view's bounds are what count.
  const inside = new Uint8Array(sealed.length + 20);
  inside.set(sealed, 7);
  const view = inside.subarray(7, 7 + sealed.length);
  const parts = parseSealed(view);
  t.same(parts?.header, { noticeId: idA, format: 'jose' });
  t.same(openSealed(idA, parts!, dk), signed);
  sealFails(t, 'parts asked as another notice', () => openSealed(idB, parts!, dk));
  sealFails(t, 'parts under another data key', () => openSealed(idA, parts!, newDataKey()));
  t.equal(parseSealed(signed), null, 'a notice stored in clear has no parts');
});

t.test('jose opens what node:crypto sealed, and the reverse', async (t) => {
  const dk = newDataKey();
  const sealed = new TextDecoder().decode(sealNotice(idA, 'openpgp', signed, dk));
  const { plaintext, protectedHeader } = await compactDecrypt(sealed, dk);
  t.same(plaintext, signed);
  t.same(protectedHeader, { alg: 'dir', enc: 'A256GCM', cty: 'liaison-notice+openpgp', 'liaison-notice': idA });
  const byJose = await new CompactEncrypt(signed)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', cty: 'liaison-notice+jose', 'liaison-notice': idB })
    .encrypt(dk);
  t.same(openSealed(idB, enc.encode(byJose), dk), signed);
});

t.test('hostile inputs fail with SealError, never open, never crash', async (t) => {
  const dk = newDataKey();
  const sealed = sealNotice(idA, 'jose', signed, dk);
  const text = new TextDecoder().decode(sealed);
  const fails = (what: string, f: () => unknown) => sealFails(t, what, f);
  fails('wrong data key', () => openSealed(idA, sealed, newDataKey()));
  fails('asked as another notice', () => openSealed(idB, sealed, dk));
  // The ciphertext moved under another notice's header (so it "names" B): the AAD no longer matches.
  const headerB = Buffer.from(
    JSON.stringify({ alg: 'dir', enc: 'A256GCM', cty: 'liaison-notice+jose', 'liaison-notice': idB }),
  ).toString('base64url');
  fails('swapped id in the header', () =>
    openSealed(idB, enc.encode([headerB, ...text.split('.').slice(1)].join('.')), dk),
  );
  fails('truncated', () => openSealed(idA, sealed.subarray(0, sealed.length - 5), dk));
  const parts = text.split('.');
  const ct = Buffer.from(parts[3]!, 'base64url');
  ct[0] = ct[0]! ^ 1;
  parts[3] = ct.toString('base64url');
  fails('a flipped ciphertext bit', () => openSealed(idA, enc.encode(parts.join('.')), dk));
  fails('a header that claims to be sealed but is not ours', () =>
    sealedHeader(
      enc.encode(
        `${Buffer.from(JSON.stringify({ alg: 'A256KW', enc: 'A256GCM', 'liaison-notice': idA })).toString('base64url')}.x.y.z.w`,
      ),
    ),
  );
  fails('five parts, not base64url', () => openSealed(idA, enc.encode(`${parts[0]}..!!.??.**`), dk));
  fails('a 31-byte data key', () => sealNotice(idA, 'jose', signed, dk.subarray(1)));
  fails('junk is not a sealed notice', () => openSealed(idA, randomBytes(100), dk));
  // What is not sealed at all (a legacy clear notice) is told apart, not an error.
  t.equal(sealedHeader(signed), null, 'a compact JWS');
  t.equal(sealedHeader(enc.encode('-----BEGIN PGP MESSAGE-----\n\nwcBMA...')), null, 'armored OpenPGP');
  t.equal(sealedHeader(new Uint8Array([0xc4, 0x2e, 0x00])), null, 'binary');
  t.equal(sealedHeader(new Uint8Array()), null, 'empty');
});

t.test('the data key is wrapped with RFC 3394 AES key wrap under the storage key', async (t) => {
  const dk = newDataKey();
  const w = wrapDataKey(dk, storage);
  t.equal(w.kek, 'storage-a');
  t.equal(Buffer.from(w.wrapped, 'base64url').length, 40);
  t.same(unwrapDataKey(w, storage), dk);
  // RFC 3394 section 4.6 test vector (256-bit KEK, 256-bit key data).
  const kek = Buffer.from('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F', 'hex');
  const data = Buffer.from('00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F', 'hex');
  t.equal(
    Buffer.from(wrapDataKey(data, { kid: 'v', key: kek }).wrapped, 'base64url')
      .toString('hex')
      .toUpperCase(),
    '28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21',
  );
  const fails = (what: string, f: () => unknown) => sealFails(t, what, f);
  fails('another storage key under the same kid', () => unwrapDataKey(w, other));
  fails('another kid', () => unwrapDataKey(w, { ...storage, kid: 'storage-b' }));
  const bad = Buffer.from(w.wrapped, 'base64url');
  bad[3] = bad[3]! ^ 1;
  fails('a tampered record', () => unwrapDataKey({ ...w, wrapped: bad.toString('base64url') }, storage));
  fails('a short record', () => unwrapDataKey({ ...w, wrapped: bad.subarray(0, 32).toString('base64url') }, storage));
});
