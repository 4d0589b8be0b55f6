import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMessage, encrypt, readKey, readPrivateKey } from 'openpgp';
import { isLiaisonError } from '../broker/core/errors.js';
import { createOpenPgpSignerResolver } from '../adapters/openpgp/signers.js';
import { makeOpenPgpAgencyKey } from '../broker/keys/openpgp-agency.js';
import { RegistrySnapshot, type RegistrySeed } from '../broker/registry/model.js';
import { createRegistryValidator } from '../broker/schemas/notice-validator.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url);
const seed = JSON.parse(readFileSync(join(g.dataDir, 'registry.json'), 'utf8')) as RegistrySeed;
const validate = createRegistryValidator();
const paths = (r: ReturnType<typeof validate>) => (r.ok ? [] : r.errors.map((e) => e.path));

t.test('the demo network registers OpenPGP keys for some agencies, private parts in their credentials', async (t) => {
  t.same(validate(seed), { ok: true });
  const withPgp = seed.agencies.filter((a) => a.openpgp_keys?.length).map((a) => a.id);
  t.same(withPgp.sort(), ['fr-douane', 'gb-border-force', 'iq-police']);
  const fr = seed.agencies.find((a) => a.id === 'fr-douane')!.openpgp_keys![0]!;
  t.match(fr, { use: 'sig', format: 'openpgp', status: 'active', kid: /^[0-9A-F]{40}$/ });
  t.notMatch(fr.armored, /PRIVATE/);
  const creds = g.creds('fr-douane');
  t.equal(creds.openpgp?.fingerprint, fr.kid);
  t.match(creds.openpgp?.private_armored, /^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
});

t.test('registry schema: OpenPGP key records', async (t) => {
  const withKey = (patch: Record<string, unknown>, extra: Record<string, unknown>[] = []) => {
    const s = structuredClone(seed) as unknown as { agencies: Record<string, unknown>[] };
    const fr = s.agencies.find((a) => a['id'] === 'fr-douane')!;
    const key = { ...(fr['openpgp_keys'] as Record<string, unknown>[])[0], ...patch };
    fr['openpgp_keys'] = [key, ...extra];
    return validate(s);
  };
  const at = (i: number) => `/agencies/${seed.agencies.findIndex((a) => a.id === 'fr-douane')}/openpgp_keys/${i}`;
  const fr = seed.agencies.find((a) => a.id === 'fr-douane')!;
  const creds = g.creds('fr-douane');
  t.same(
    paths(withKey({ armored: creds.openpgp!.private_armored })),
    [`${at(0)}/armored`],
    'a secret key block is refused',
  );
  t.same(
    paths(withKey({ kid: fr.openpgp_keys![0]!.kid.toLowerCase() })),
    [`${at(0)}/kid`],
    'the fingerprint is upper-case hex',
  );
  t.same(paths(withKey({ kid: 'ABCD' })), [`${at(0)}/kid`], 'a short key id is not a fingerprint');
  t.same(paths(withKey({ status: 'revoked' })), [`${at(0)}/revoked_at`], 'a revoked key says since when');
  t.same(paths(withKey({ format: 'jwk' })), [`${at(0)}/format`]);
  t.same(paths(withKey({ jwk: fr.keys[0]!.jwk })), [`${at(0)}/jwk`], 'no JWK in an OpenPGP record');
  t.same(
    paths(withKey({ kid: fr.openpgp_keys![0]!.kid }, [fr.openpgp_keys![0]! as unknown as Record<string, unknown>])),
    [`${at(1)}/kid`],
    'duplicate kid',
  );
  t.same(paths(withKey({ not_before: '2030-01-01T00:00:00Z', not_after: '2029-01-01T00:00:00Z' })), [
    `${at(0)}/not_after`,
  ]);
});

t.test('signer resolver: records that do not match their certificate name no key', async (t) => {
  const a = await makeOpenPgpAgencyKey('A', 'a@example.org');
  const b = await makeOpenPgpAgencyKey('B', 'b@example.org');
  const agency = (keys: unknown[]) => ({
    id: 'x',
    country: 'FR',
    name: 'X',
    roles: ['publish' as const],
    keys: [],
    openpgp_keys: keys as never,
  });
  const keyID = (await readKey({ armoredKey: a.record.armored })).getKeyID().toHex();
  const code = async (snap: RegistrySnapshot) => {
    try {
      await createOpenPgpSignerResolver(() => snap)({ keyID });
      return 'ok';
    } catch (e) {
      return isLiaisonError(e) ? e.code : String(e);
    }
  };
  t.equal(await code(new RegistrySnapshot([agency([a.record])], [])), 'ok');
  t.equal(
    await code(new RegistrySnapshot([agency([{ ...a.record, armored: b.record.armored }])], [])),
    'key-unknown',
    'kid is not the certificate fingerprint',
  );
  t.equal(
    await code(new RegistrySnapshot([agency([{ ...a.record, use: 'enc' }])], [])),
    'key-unknown',
    'an encryption record does not sign',
  );
  t.equal(
    await code(new RegistrySnapshot([agency([a.record]), { ...agency([a.record]), id: 'y' }], [])),
    'key-unknown',
    'a certificate claimed twice names no one',
  );
  t.equal(
    await code(
      new RegistrySnapshot([agency([{ ...a.record, not_before: new Date(Date.now() + 3600_000).toISOString() }])], []),
    ),
    'key-revoked',
    'not yet valid',
  );
});

t.test('a demo agency sends with openpgp.js and its credentials file', async (t) => {
  const published = (await g.gw.app.inject({ method: 'GET', url: '/v1/keys' })).json<{ openpgp: string }>();
  const creds = g.creds('fr-douane');
  const n = sampleNotice('seizure-report', {
    operation: 'aircop',
    origin: { country: 'FR', agency: 'fr-douane' },
    addressees: ['GB'],
    tlp: 'GREEN',
  });
  const armored = await encrypt({
    message: await createMessage({ binary: new TextEncoder().encode(JSON.stringify(n)) }),
    encryptionKeys: await readKey({ armoredKey: published.openpgp }),
    signingKeys: await readPrivateKey({ armoredKey: creds.openpgp!.private_armored }),
  });
  const res = await g.post(armored, 'application/pgp-encrypted');
  t.equal(res.status, 202, JSON.stringify(res.json));
  t.same(res.json.recipients, ['gb-border-force']);
});
