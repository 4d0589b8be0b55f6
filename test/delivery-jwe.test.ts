/**
 * The delivery JWEs of one notice (adapters/jose/delivery-jwe.ts): one content
 * encryption shared by every recipient, each recipient's own JWE in the
 * flattened JSON serialization, opened by jose and by python3-jwcrypto; and the
 * compact JWEs stored before that change still open.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { CompactEncrypt, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { decryptDelivery, DELIVERY_TYP, encryptDeliveries } from '../adapters/jose/encrypt.js';
import { importRecipientKey } from '../adapters/jose/delivery-jwe.js';
import { joseFormat } from '../adapters/jose/format.js';
import type { RegistryJwk } from '../broker/registry/model.js';
import { JWCRYPTO_TOOL } from './helpers/jwcrypto.js';

const py = (jwe: string, privateJwk: JWK) =>
  spawnSync('/usr/bin/python3', [JWCRYPTO_TOOL, 'open'], {
    input: JSON.stringify({ jwe, private_jwk: privateJwk }),
    encoding: 'utf8',
    timeout: 30_000,
  });

type Curve = 'X25519' | 'P-256';
const pair = async (crv: Curve) => {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv, extractable: true });
  return { crv, pub: (await exportJWK(publicKey)) as RegistryJwk, priv: await exportJWK(privateKey) };
};

interface Flattened {
  protected: string;
  header: { alg: string; kid: string; epk: Record<string, string> };
  encrypted_key: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

const signed = new TextEncoder().encode(
  'eyJhbGciOiJFZERTQSJ9.' +
    Buffer.from('{"summary":"ضبط شحنة — Bắt giữ lô hàng — ยึดสินค้า"}').toString('base64url') +
    '.c2ln',
);
const keys = await Promise.all((['X25519', 'P-256', 'X25519', 'P-256'] as const).map(pair));
const bodies = await encryptDeliveries(
  signed,
  keys.map((k, i) => ({ kid: `k${i}`, jwk: k.pub })),
  'n-1',
  'jose',
);
const texts = bodies.map((b) => new TextDecoder().decode(b));
const jwes = texts.map((s) => JSON.parse(s) as Flattened);

const FAILED = 'ERR_JWE_DECRYPTION_FAILED';

/** Both implementations refuse it: jose (through decryptDelivery) with the error `code`, and jwcrypto. */
async function neitherOpens(t: Test, jwe: string, priv: JWK, what: string, code: string = FAILED) {
  await t.rejects(decryptDelivery(jwe, priv), { code }, `${what}: jose refuses it (${code})`);
  t.equal(py(jwe, priv).status, 1, `${what}: jwcrypto refuses it`);
}

const flip = (b64u: string) => {
  const b = Buffer.from(b64u, 'base64url');
  b[b.length >> 1]! ^= 0x01;
  return b.toString('base64url');
};
const b64json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

t.test(
  'one notice to X25519 and P-256 recipients: each JWE opens in jose and in jwcrypto, to its own key',
  async (t) => {
    for (const [i, k] of keys.entries()) {
      const viaJose = await decryptDelivery(texts[i]!, k.priv);
      t.same(Buffer.from(viaJose.signed), Buffer.from(signed), `${i} ${k.crv}: jose gets the signed bytes back`);
      t.same(
        viaJose.protectedHeader,
        { typ: DELIVERY_TYP, cty: 'JWT', 'liaison-notice-id': 'n-1', enc: 'A256GCM' },
        'the protected header: the members common to all',
      );
      t.match(viaJose.header, { alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: `k${i}`, epk: { crv: k.crv } });
      const out = py(texts[i]!, k.priv);
      t.equal(out.status, 0, out.stderr);
      const opened = JSON.parse(out.stdout) as { jose_header: Record<string, unknown>; plaintext_b64: string };
      t.same(Buffer.from(opened.plaintext_b64, 'base64'), Buffer.from(signed), `${i} ${k.crv}: jwcrypto too`);
      t.match(opened.jose_header, {
        alg: 'ECDH-ES+A256KW',
        enc: 'A256GCM',
        kid: `k${i}`,
        typ: DELIVERY_TYP,
        cty: 'JWT',
        'liaison-notice-id': 'n-1',
        epk: { crv: k.crv },
      });
      const other = keys[(i + 1) % keys.length]!;
      await neitherOpens(t, texts[i]!, other.priv, `${i}: another recipient's key`);
    }
  },
);

t.test('one content encryption: iv, ciphertext and tag shared, a wrap of its own per recipient', async (t) => {
  for (const j of jwes)
    t.same(
      Object.keys(j).sort(),
      ['ciphertext', 'encrypted_key', 'header', 'iv', 'protected', 'tag'],
      "a flattened JWE: the recipient's own wrap only, no other recipient's",
    );
  for (const m of ['protected', 'iv', 'ciphertext', 'tag'] as const)
    t.equal(new Set(jwes.map((j) => j[m])).size, 1, `${m}: the same for all four`);
  t.equal(new Set(jwes.map((j) => j.encrypted_key)).size, 4, 'encrypted_key: one of its own each');
  const epk = jwes.map((j) => JSON.stringify(j.header.epk));
  t.equal(epk[0], epk[2], 'one ephemeral key for the X25519 recipients');
  t.equal(epk[1], epk[3], 'one for the P-256 recipients');
  t.not(epk[0], epk[1], 'one per curve');
  const again = (await encryptDeliveries(signed, [{ kid: 'k0', jwk: keys[0]!.pub }], 'n-1', 'jose')).map(
    (b) => JSON.parse(new TextDecoder().decode(b)) as Flattened,
  )[0]!;
  t.not(again.iv, jwes[0]!.iv, 'another notice: another IV');
  t.not(JSON.stringify(again.header.epk), epk[0], 'and another ephemeral key');
});

t.test("a recipient's tampered header, epk or encrypted_key does not open", async (t) => {
  for (const i of [0, 1]) {
    const k = keys[i]!;
    const j = jwes[i]!;
    const with_ = (patch: Partial<Flattened>) => JSON.stringify({ ...j, ...patch });
    const fresh = await pair(k.crv);
    await neitherOpens(t, with_({ encrypted_key: flip(j.encrypted_key) }), k.priv, `${k.crv}: a changed encrypted_key`);
    await neitherOpens(
      t,
      with_({ encrypted_key: jwes[i + 2]!.encrypted_key }),
      k.priv,
      `${k.crv}: the other recipient's encrypted_key`,
    );
    const { d: _d, ...otherPoint } = fresh.priv as Record<string, string>;
    await neitherOpens(
      t,
      with_({ header: { ...j.header, epk: otherPoint } }),
      k.priv,
      `${k.crv}: another ephemeral public key`,
    );
    await neitherOpens(
      t,
      with_({ header: { ...j.header, alg: 'ECDH-ES' } }),
      k.priv,
      `${k.crv}: alg changed`,
      'ERR_JOSE_ALG_NOT_ALLOWED',
    );
    const protectedHeader = JSON.parse(Buffer.from(j.protected, 'base64url').toString()) as Record<string, string>;
    await neitherOpens(
      t,
      with_({ protected: b64json({ ...protectedHeader, cty: 'pgp-signed' }) }),
      k.priv,
      `${k.crv}: a changed protected header`,
    );
    await neitherOpens(
      t,
      with_({ header: { ...j.header, cty: 'pgp-signed' } as Flattened['header'] }),
      k.priv,
      `${k.crv}: a protected member repeated in the unprotected header`,
      'ERR_JWE_INVALID',
    );
    await neitherOpens(t, with_({ ciphertext: flip(j.ciphertext) }), k.priv, `${k.crv}: a changed ciphertext`);
    await neitherOpens(t, with_({ tag: flip(j.tag) }), k.priv, `${k.crv}: a changed tag`);
  }
});

t.test('a compact JWE stored before one content encryption per notice still opens', async (t) => {
  for (const k of keys.slice(0, 2)) {
    const compact = await new CompactEncrypt(signed)
      .setProtectedHeader({
        alg: 'ECDH-ES+A256KW',
        enc: 'A256GCM',
        kid: 'old',
        typ: DELIVERY_TYP,
        cty: 'JWT',
        'liaison-notice-id': 'n-0',
      })
      .encrypt(await importJWK({ ...k.pub, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW'));
    const opened = await decryptDelivery(compact, k.priv);
    t.same(Buffer.from(opened.signed), Buffer.from(signed), `${k.crv}: the signed bytes`);
    t.match(opened.protectedHeader, { kid: 'old', cty: 'JWT', 'liaison-notice-id': 'n-0' });
    t.equal(joseFormat.inboxDelivery.defect(new TextEncoder().encode(compact)), null, 'the inbox serves it');
  }
});

t.test('decryptDelivery refuses what is neither form', async (t) => {
  const priv = keys[0]!.priv;
  await t.rejects(decryptDelivery('{"protected":', priv), { name: 'TypeError' }, 'JSON cut short');
  const general = { ...jwes[0]!, recipients: [{ header: jwes[0]!.header, encrypted_key: jwes[0]!.encrypted_key }] };
  await t.rejects(decryptDelivery(JSON.stringify(general), priv), { name: 'TypeError' }, 'a general JWE');
  await t.rejects(decryptDelivery('not.a.jwe', priv), { code: 'ERR_JWE_INVALID' }, 'three parts');
});

t.test('the inbox serves a JOSE delivery only in a shape the router writes', async (t) => {
  const defect = (s: string) => joseFormat.inboxDelivery.defect(new TextEncoder().encode(s));
  const j = jwes[0]!;
  t.equal(defect(texts[0]!), null, 'a flattened JWE as sealed');
  const bad: [string, string][] = [
    ['{', 'JSON cut short'],
    ['[]', 'an array'],
    ['{}', 'no members'],
    [JSON.stringify({ ...j, aad: 'YQ' }), 'an extra member'],
    [JSON.stringify({ ...j, unprotected: {} }), 'a shared unprotected header'],
    [JSON.stringify({ ...j, recipients: [] }), 'a general JWE'],
    [JSON.stringify({ ...j, tag: undefined }), 'no tag'],
    [JSON.stringify({ ...j, header: 'x' }), 'a header that is no object'],
    [JSON.stringify({ ...j, header: null }), 'a null header'],
    [JSON.stringify({ ...j, iv: 'a+b/' }), 'an iv that is not base64url'],
    [JSON.stringify({ ...j, ciphertext: 7 }), 'a ciphertext that is no string'],
    [JSON.stringify({ ...j, encrypted_key: '' }), 'an empty encrypted_key'],
    ['a.b.c', 'a JWS'],
    ['hello', 'text'],
  ];
  for (const [body, what] of bad) t.not(defect(body), null, `${what}: not served`);
});

t.test('a delivery key must be an X25519 or a valid P-256 key', async (t) => {
  const x = Buffer.alloc(32, 7).toString('base64url');
  t.throws(
    () => importRecipientKey({ kty: 'OKP', crv: 'Ed25519', x }),
    { name: 'TypeError', message: /unsupported OKP\/Ed25519/ },
    'a signing key is not a delivery key',
  );
  t.throws(
    () => importRecipientKey({ kty: 'EC', crv: 'P-256', x, y: x }),
    { code: 'ERR_CRYPTO_INVALID_JWK' },
    'a P-256 point not on the curve is refused',
  );
});
