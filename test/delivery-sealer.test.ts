import t from 'tap';
import { existsSync } from 'node:fs';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { decryptDelivery } from '../adapters/jose/encrypt.js';
import { DeliverySealer } from '../adapters/jose/seal-pool.js';
import type { RegistryJwk } from '../broker/registry/model.js';

const pair = async (crv: 'X25519' | 'P-256') => {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv, extractable: true });
  return { pub: (await exportJWK(publicKey)) as RegistryJwk, priv: await exportJWK(privateKey) };
};
const ascii = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const opens = (jwe: Uint8Array | undefined, priv: JWK) =>
  decryptDelivery(ascii(jwe), priv).then(
    (d) => Buffer.from(d.signed).toString('utf8'),
    () => undefined,
  );

t.test('the sealing worker: one JWE per recipient, in order, each to its own key', async (t) => {
  const [a, b] = [await pair('X25519'), await pair('P-256')];
  const sealer = new DeliverySealer();
  t.teardown(() => sealer.close());
  // A view into a larger buffer, as a NATS message's data is: only the view's bytes are sealed.
  const big = new TextEncoder().encode('xxxxa.b.cyyyy');
  const signed = big.subarray(4, 9);
  const [ja, jb] = await sealer.seal(
    signed,
    [
      { kid: 'ka', jwk: a.pub },
      { kid: 'kb', jwk: b.pub },
    ],
    'n-1',
    'jose',
  );
  t.equal(await opens(ja, a.priv), 'a.b.c', 'the first opens with the first key');
  t.equal(await opens(jb, b.priv), 'a.b.c', 'the second with the second');
  t.equal(await opens(ja, b.priv), undefined, 'not with the other key');
  t.equal(signed.length, 5, "the caller's bytes are intact");
  t.ok(
    ja!.byteOffset === 0 && ja!.buffer.byteLength === ja!.byteLength,
    'each JWE comes back in a buffer of its own (transferred, not copied)',
  );
  const { header } = await decryptDelivery(ascii(ja), a.priv);
  t.match(header, {
    alg: 'ECDH-ES+A256KW',
    enc: 'A256GCM',
    kid: 'ka',
    typ: 'liaison-delivery+jwe',
    cty: 'JWT',
    'liaison-notice-id': 'n-1',
  });
  // A key changed in place is used as it is now (the worker's import cache is keyed by the key material).
  const jwk = { ...a.pub };
  await sealer.seal(signed, [{ kid: 'k', jwk }], 'n-2', 'jose');
  const c = await pair('X25519');
  Object.assign(jwk, { x: c.pub.x });
  const [jc] = await sealer.seal(signed, [{ kid: 'k', jwk }], 'n-3', 'jose');
  t.equal(await opens(jc, c.priv), 'a.b.c', 'the new key material is used');
  t.same(await sealer.seal(signed, [], 'n-4', 'jose'), [], 'no recipients, no work');
  // Its thread id, for the per-thread CPU metric: a thread of this process other than the main one.
  const tid = sealer.threadId;
  t.ok(
    tid !== undefined && tid !== process.pid && existsSync(`/proc/self/task/${tid}`),
    'the worker names its own thread',
  );
});

t.test('the sealing worker fails visibly and recovers', async (t) => {
  const a = await pair('X25519');
  const sealer = new DeliverySealer();
  t.teardown(() => sealer.close());
  await t.rejects(
    sealer.seal(new Uint8Array([1]), [{ kid: 'bad', jwk: { kty: 'OKP', crv: 'X25519', x: '!!' } }], 'n', 'jose'),
    /sealing failed/,
    'a key that cannot be imported rejects the job',
  );
  const [ok] = await sealer.seal(new TextEncoder().encode('a.b.c'), [{ kid: 'ka', jwk: a.pub }], 'n', 'jose');
  t.equal(await opens(ok, a.priv), 'a.b.c', 'the next job works');
  // Closing rejects what the worker had in hand; sealing after close runs in process.
  const pending = sealer.seal(
    new TextEncoder().encode('a.b.c'),
    Array.from({ length: 50 }, () => ({ kid: 'ka', jwk: a.pub })),
    'n',
    'jose',
  );
  const rejected = t.rejects(pending, /closed/, 'closing rejects pending jobs');
  await sealer.close();
  await rejected;
  t.equal(sealer.threadId, undefined, 'no thread id once the worker is gone');
  const [after] = await sealer.seal(new TextEncoder().encode('a.b.c'), [{ kid: 'ka', jwk: a.pub }], 'n', 'jose');
  t.equal(await opens(after, a.priv), 'a.b.c', 'after close, sealing still works (in process)');
});
