import t from 'tap';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { decryptDelivery, encryptDelivery } from '../adapters/jose/encrypt.js';
import type { RegistryJwk } from '../broker/registry/model.js';

const pair = async () => {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519', extractable: true });
  return { pub: (await exportJWK(publicKey)) as RegistryJwk, priv: await exportJWK(privateKey) };
};
const opens = (jwe: string, priv: JWK) =>
  decryptDelivery(jwe, priv).then(
    () => true,
    () => false,
  );

t.test('recipient keys are cached per registry JWK, never past a key change', async (t) => {
  const [a, b] = [await pair(), await pair()];
  const signed = new TextEncoder().encode('a.b.c');
  const recipient = { kid: 'k1', jwk: a.pub };
  for (let i = 0; i < 3; i++)
    t.ok(
      await opens(await encryptDelivery(signed, recipient, 'n'), a.priv),
      `delivery ${i} opens with the current key`,
    );
  // A new registry snapshot holds a new JWK object.
  t.ok(
    await opens(await encryptDelivery(signed, { kid: 'k2', jwk: b.pub }, 'n'), b.priv),
    'a new key object is imported',
  );
  // Even a JWK changed in place is not served from the cache.
  Object.assign(a.pub, { x: b.pub.x });
  const jwe = await encryptDelivery(signed, recipient, 'n');
  t.ok(await opens(jwe, b.priv), 'the changed key is used');
  t.notOk(await opens(jwe, a.priv), 'not the old one');
  await t.rejects(
    encryptDelivery(signed, { kid: 'bad', jwk: { kty: 'OKP', crv: 'X25519', x: '!!' } }, 'n'),
    { code: 'ERR_CRYPTO_INVALID_JWK' },
    'a key that cannot be imported fails visibly',
  );
});
