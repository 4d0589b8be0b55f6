/**
 * The envelope-format registry (broker/formats/registry.ts): names, look-ups, and the
 * per-format pieces the broker asks it for. Pure: no NATS.
 */
import t from 'tap';
import { DELIVERY_CTY, encryptDelivery } from '../adapters/jose/encrypt.js';
import { createOpenPgpDeliverySealer, DELIVERY_FILE_EXTENSION } from '../adapters/openpgp/seal-delivery.js';
import {
  DEFAULT_DELIVERY_FORMAT,
  ENVELOPE_FORMATS,
  envelopeFormat,
  isEnvelopeFormatName,
} from '../broker/formats/registry.js';
import { generateBrokerOpenPgpKey } from '../broker/keys/openpgp-keys.js';
import { readPrivateKey } from 'openpgp';
import { createDeliverySealers } from '../broker/routing/seal.js';

t.test('the registry: one entry per format, looked up by name; anything else is format-unknown', async (t) => {
  t.same(
    ENVELOPE_FORMATS.map((f) => f.name),
    ['jose', 'openpgp', 'jose-e2e', 'openpgp-e2e'],
  );
  t.equal(DEFAULT_DELIVERY_FORMAT, 'jose');
  t.equal(envelopeFormat('openpgp').name, 'openpgp');
  for (const name of ['smime', '', 'JOSE', 'toString', '__proto__', undefined, 7]) {
    t.notOk(isEnvelopeFormatName(name), `${String(name)} is not a format`);
    t.throws(() => envelopeFormat(name), { name: 'LiaisonError', code: 'format-unknown' });
  }
  // A format delivered as received (end to end) is never carried inside another format's delivery.
  const carried = ENVELOPE_FORMATS.filter((f) => !('deliveredAsReceived' in f && f.deliveredAsReceived))
    .map((f) => f.name)
    .sort();
  t.same(Object.keys(DELIVERY_CTY).sort(), carried, 'a JWE cty for every format');
  t.same(Object.keys(DELIVERY_FILE_EXTENSION).sort(), carried, 'an OpenPGP literal data file name for every format');
});

t.test('each format opens only with what it needs: OpenPGP not without a broker OpenPGP key', async (t) => {
  const deps = {
    registry: () => {
      throw new Error('not read at start');
    },
    maxEnvelopeBytes: 1024,
  };
  t.equal(envelopeFormat('jose').opener(deps)?.format, 'jose');
  t.equal(envelopeFormat('openpgp').opener(deps), undefined);
  const key = await readPrivateKey({ armoredKey: await generateBrokerOpenPgpKey('t') });
  t.same(envelopeFormat('openpgp').opener({ ...deps, openPgpDecryptionKeys: [key] })?.mediaTypes, [
    'application/pgp-encrypted',
  ]);
  // Sealers the same way: JOSE always, OpenPGP with the broker's key only.
  const without = createDeliverySealers({});
  const withKey = createDeliverySealers({ openPgpSigningKey: key });
  t.same(
    [[...without.keys()], [...withKey.keys()]],
    [
      ['jose', 'jose-e2e', 'openpgp-e2e'],
      ['jose', 'openpgp', 'jose-e2e', 'openpgp-e2e'],
    ],
  );
  await Promise.all([...without.values(), ...withKey.values()].map(async (s) => s.close?.()));
});

t.test(
  'sealing a notice of an unregistered origin format throws format-unknown (never a delivery without its label)',
  async (t) => {
    const recipient = {
      kid: 'th-enc',
      jwk: { kty: 'OKP', crv: 'X25519', x: 'hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo' },
    };
    await t.rejects(encryptDelivery(new Uint8Array([1]), recipient, 'n', 'smime'), { code: 'format-unknown' });
    await t.rejects(encryptDelivery(new Uint8Array([1]), recipient, 'n', 'toString'), { code: 'format-unknown' });
    const key = await readPrivateKey({ armoredKey: await generateBrokerOpenPgpKey('t') });
    await t.rejects(
      createOpenPgpDeliverySealer(key).seal(new Uint8Array([1]), {
        key: key.toPublic(),
        noticeId: 'n',
        format: 'smime',
      }),
      { code: 'format-unknown' },
    );
  },
);
