/**
 * The OpenPGP form of end-to-end notices (openpgp-e2e, docs/end-to-end.md) on
 * a real nats-server through the real gateway: delivered as posted to exactly
 * its recipients, opened by each with the client and by GnuPG, never by the
 * hub; the gateway's checks on hostile envelopes; the audit's check.
 * vn-customs, th-customs and la-customs get OpenPGP certificates beside their
 * JWKs; cn-customs stays JOSE-only (the mixed network).
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createMessage, decrypt, encrypt, readKey, readMessage, readPrivateKey, sign, type PublicKey } from 'openpgp';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import type { OperationDirectory } from '../broker/agency-client/end-to-end.js';
import {
  E2E_PGP_MEDIA_TYPE,
  isOpenPgpE2e,
  openEndToEndOpenPgp,
  recipientCertificates,
  sealEndToEndOpenPgp,
} from '../broker/agency-client/end-to-end-openpgp.js';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { routingHeaderOf } from '../broker/agency-client/end-to-end.js';
import { parseE2ePgpBody } from '../adapters/e2e-openpgp/wire.js';
import { armorMessage, dearmorMessage } from '../adapters/openpgp/dearmor.js';
import { scanPackets } from '../adapters/openpgp/scan-packets.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { credentialsPath, ensureDemoNetwork, readCredentials } from '../broker/demo/demo-network.js';
import { makeOpenPgpAgencyKey } from '../broker/keys/openpgp-agency.js';
import type { RegistrySeed } from '../broker/registry/model.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import { startTestGateway, sampleNotice } from './helpers/gateway.js';
import { startGpg } from './helpers/gpg.js';
import { inboxClients } from './helpers/inbox.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(240_000);
const nats = await startTestNats(t);
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-e2epgp-'));
await ensureDemoNetwork(dataDir);
const PGP_AGENCIES = ['vn-customs', 'th-customs', 'la-customs'];
{
  const seedFile = join(dataDir, 'registry.json');
  const seed = JSON.parse(readFileSync(seedFile, 'utf8')) as RegistrySeed;
  for (const id of PGP_AGENCIES) {
    const pgp = await makeOpenPgpAgencyKey(id, `${id}@demo.liaison.invalid`);
    seed.agencies.find((a) => a.id === id)!.openpgp_keys = [pgp.record];
    const file = credentialsPath(dataDir, id);
    const creds = readCredentials(file);
    creds.openpgp = { fingerprint: pgp.record.kid, private_armored: pgp.privateArmored };
    writeFileSync(file, JSON.stringify(creds), { mode: 0o600 });
  }
  writeFileSync(seedFile, JSON.stringify(seed), { mode: 0o600 });
}
const g = await startTestGateway(
  t,
  nats.url,
  { leaseTtlSeconds: 3, routerAckWaitSeconds: 2, checkpointIntervalMs: 200, checkpointEveryEntries: 1 },
  { dataDir },
);
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;

const E2E_OP = 'mekong-sealed';
const pgpKey = (agency: string) => g.creds(agency).openpgp!.private_armored;
const validator = createNoticeValidator();

async function authed(agency: string, path: string): Promise<{ status: number; json: any }> {
  const token = await makeClientAssertion(agency, g.creds(agency).signing, g.config.brokerId);
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, json: await res.json() };
}
const directory = async (agency = 'vn-customs') =>
  (await authed(agency, `/v1/operations/${E2E_OP}/members`)).json as OperationDirectory;

const client = inboxClients(g, url, { openPgp: true });
const originPgpKeys = (agency: string) => client('th-customs').agencyOpenPgpKeys(agency);

const e2eNotice = (patch: Record<string, unknown> = {}) =>
  sampleNotice('seizure-report', {
    operation: E2E_OP,
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs', 'la-customs'],
    tlp: 'RED',
    ...patch,
  });
const certsOf = async (notice: Record<string, unknown>) => recipientCertificates(notice, await directory());
const seal = async (notice: Record<string, any>, signer = 'vn-customs', keys?: { key: PublicKey }[]) =>
  sealEndToEndOpenPgp(notice, pgpKey(signer), keys ?? (await certsOf(notice)));
const deliveryOf = (agency: string, id: string) =>
  waitFor(
    async () => (await client(agency).pull({ limit: 500 })).deliveries.find((d) => d.notice_id === id),
    `${agency}'s delivery of ${id}`,
  );

/** The routing header of `notice` binding `body`, signed with `signer`'s OpenPGP key: for envelopes built by hand. */
async function envelopeWith(notice: Record<string, unknown>, body: string, signer = 'vn-customs'): Promise<string> {
  const header = routingHeaderOf(notice, sha256Hex(Buffer.from(body, 'utf8')));
  const signed = (await sign({
    message: await createMessage({ binary: new TextEncoder().encode(JSON.stringify(header)), format: 'binary' }),
    signingKeys: await readPrivateKey({ armoredKey: pgpKey(signer) }),
    format: 'armored',
  })) as string;
  return JSON.stringify({ header: signed, body });
}

const notice = e2eNotice({ summary: 'MARKER-E2E-PGP-51c2 shipment of rhino horn' });
const sealed = await seal(notice);
const accepted = await g.post(sealed.envelope, E2E_PGP_MEDIA_TYPE);

t.test('the member directory lists active OpenPGP certificates; the gateway counts the same receivers', async (t) => {
  const dir = await directory();
  const by = (a: string) => dir.members.find((m) => m.agency === a)!;
  for (const a of PGP_AGENCIES) t.same(by(a).openpgp_keys?.length, 1, `${a} has its certificate listed`);
  t.same(by('cn-customs').openpgp_keys, [], 'cn-customs has none');
  t.ok(by('cn-customs').receives, 'and still receives (its JWK)');
  for (const m of dir.members)
    for (const k of m.openpgp_keys ?? []) t.match(k, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/, 'public blocks only');
});

t.test('an OpenPGP end-to-end notice reaches exactly its recipients as posted, and each opens it', async (t) => {
  t.equal(accepted.status, 202, JSON.stringify(accepted.json));
  t.same(accepted.json.recipients, ['la-customs', 'th-customs']);
  t.equal(parseE2ePgpBody(sealed.body, 1 << 20).keyIds.length, 2, 'one session key per recipient');
  for (const agency of ['th-customs', 'la-customs']) {
    const d = await deliveryOf(agency, notice.id);
    t.equal(d.e2e, sealed.envelope, `${agency} is delivered the envelope as posted`);
    t.ok(isOpenPgpE2e(d.e2e!), 'in the OpenPGP form');
    const opened = await openEndToEndOpenPgp(d, pgpKey(agency), originPgpKeys, validator);
    t.same(opened.notice, notice, `${agency} opens and validates the notice`);
    t.equal(opened.signerKid, g.creds('vn-customs').openpgp!.fingerprint, "the origin's OpenPGP signature verifies");
    t.same((await client(agency).open(d)).notice, notice, 'the InboxClient does the same');
  }
  for (const agency of ['cn-customs', 'vn-customs']) {
    const page = await client(agency).pull({ limit: 500 });
    t.notOk(
      page.deliveries.some((d) => d.notice_id === notice.id),
      `${agency} is delivered nothing`,
    );
  }
  const th = await deliveryOf('th-customs', notice.id);
  // vn-customs holds an OpenPGP key, but none the body is sealed for.
  await t.rejects(openEndToEndOpenPgp(th, pgpKey('vn-customs'), originPgpKeys, validator), { code: 'decrypt-failed' });
  // A JOSE-only client cannot open it either.
  const jose = new InboxClient({
    url,
    agency: 'cn-customs',
    signingKey: g.creds('cn-customs').signing,
    encryptionKey: g.creds('cn-customs').encryption,
    brokerId: g.config.brokerId,
  });
  await t.rejects(jose.open(th), { code: 'decrypt-failed' });
});

t.test('the hub cannot open the body: no broker OpenPGP key is among its session keys', async (t) => {
  const brokerKeys = g.gw.keyring.openpgp!.decryptionKeys;
  t.ok(brokerKeys.length > 0, 'the broker has OpenPGP secret keys');
  const message = await readMessage({ armoredMessage: sealed.body });
  await t.rejects(decrypt({ message, decryptionKeys: [...brokerKeys] }), 'they do not decrypt the body');
  const brokerIds = brokerKeys.flatMap((k) => k.getKeyIDs().map((id) => id.toHex().toUpperCase()));
  for (const id of parseE2ePgpBody(sealed.body, 1 << 20).keyIds)
    t.notOk(brokerIds.includes(id), `${id} is not a broker key`);
  t.notOk(
    g.logLines.some((l) => l.includes('MARKER-E2E-PGP-51c2')),
    'no log line carries the content',
  );
});

t.test('GnuPG opens the body with the recipient key and verifies both signatures', async (t) => {
  const gpg = startGpg(t);
  await gpg.importKey(pgpKey('th-customs'));
  const origin = await readKey({
    armoredKey: (await readPrivateKey({ armoredKey: pgpKey('vn-customs') })).toPublic().armor(),
  });
  await gpg.importKey(origin.armor());
  const fpr = g.creds('vn-customs').openpgp!.fingerprint;
  const d = await deliveryOf('th-customs', notice.id);
  const env = JSON.parse(d.e2e!) as { header: string; body: string };
  const body = await gpg.run(['--status-fd', '2', '--decrypt'], { input: env.body });
  t.same(JSON.parse(body.stdout.toString('utf8')), notice, 'gpg --decrypt gives the notice');
  t.match(body.stderr, new RegExp(`\\[GNUPG:\\] VALIDSIG [0-9A-F]+ .* ${fpr}`), "the origin's signature is valid");
  t.match(body.stderr, /\[GNUPG:\] DECRYPTION_OKAY/);
  const header = await gpg.run(['--status-fd', '2', '--decrypt'], { input: env.header });
  const routing = JSON.parse(header.stdout.toString('utf8')) as { body_sha256: string; id: string };
  t.equal(routing.body_sha256, sha256Hex(Buffer.from(env.body, 'utf8')), 'the header binds the body');
  t.equal(routing.id, notice.id);
  t.match(header.stderr, new RegExp(`\\[GNUPG:\\] VALIDSIG [0-9A-F]+ .* ${fpr}`), "the header's signature is valid");
});

/** The binary body with its packets edited, armored again. */
function rewriteBody(body: string, edit: (bytes: Buffer) => Buffer): string {
  return armorMessage(edit(Buffer.from(dearmorMessage(body, { maxArmorBytes: 1 << 22, maxArmorHeaders: 8 }))));
}

t.test('hostile OpenPGP end-to-end envelopes each get their problem code', async (t) => {
  const expect = async (what: string, envelope: string, status: number, code: string, type = E2E_PGP_MEDIA_TYPE) => {
    const r = await g.post(envelope, type);
    t.equal(r.status, status, `${what}: ${status}`);
    t.equal(r.json.code, code, `${what}: ${code}`);
  };
  const certs = await certsOf(e2eNotice());
  const cert = (a: string) => certs.find((c) => c.agency === a)!.key;
  {
    const s = await seal(e2eNotice());
    const other = await seal(e2eNotice());
    await expect(
      'tampered body (another body under the header)',
      JSON.stringify({ header: JSON.parse(s.envelope).header, body: other.body }),
      400,
      'body-hash-mismatch',
    );
  }
  await expect(
    'a header signed by another agency',
    (await seal(e2eNotice(), 'th-customs', [{ key: cert('th-customs') }, { key: cert('la-customs') }])).envelope,
    403,
    'policy-denied',
  );
  const vnCert = (await readPrivateKey({ armoredKey: pgpKey('vn-customs') })).toPublic();
  await expect(
    'a session key for a registered non-recipient (the origin)',
    (await seal(e2eNotice(), 'vn-customs', [{ key: cert('th-customs') }, { key: cert('la-customs') }, { key: vnCert }]))
      .envelope,
    400,
    'recipients-mismatch',
  );
  const stranger = (await makeOpenPgpAgencyKey('stranger', 'x@example.invalid')).record.armored;
  await expect(
    'a session key for an unregistered key',
    (
      await seal(e2eNotice(), 'vn-customs', [
        { key: cert('th-customs') },
        { key: cert('la-customs') },
        { key: await readKey({ armoredKey: stranger }) },
      ])
    ).envelope,
    400,
    'recipients-mismatch',
  );
  await expect(
    'an addressee without a session key',
    (await seal(e2eNotice(), 'vn-customs', [{ key: cert('th-customs') }])).envelope,
    400,
    'recipients-mismatch',
  );
  const good = await seal(e2eNotice());
  {
    const n = e2eNotice();
    // The whole message inside a compressed data packet (algorithm 0, uncompressed).
    const body = rewriteBody(good.body, (b) => {
      const n = b.length + 1;
      return Buffer.concat([Buffer.from([0xc8, 0xff, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, 0]), b]);
    });
    await expect('a compressed body', await envelopeWith(n, body), 400, 'envelope-malformed');
  }
  {
    const body = rewriteBody(good.body, (b) => Buffer.concat([b, Buffer.from([0xca, 0x03, 0x50, 0x47, 0x50])]));
    await expect(
      'an extra (marker) packet after the data',
      await envelopeWith(e2eNotice(), body),
      400,
      'envelope-malformed',
    );
  }
  {
    const body = rewriteBody(good.body, (b) => {
      const [first] = scanPackets(b, { maxPackets: 8, keepBodiesUpTo: 4096 });
      const out = Buffer.from(b);
      out.fill(0, first!.end - first!.length + 1, first!.end - first!.length + 9);
      return out;
    });
    const r = await g.post(await envelopeWith(e2eNotice(), body), E2E_PGP_MEDIA_TYPE);
    t.equal(r.json.code, 'recipients-mismatch', 'a wildcard (anonymous) recipient: recipients-mismatch');
    t.match(r.json.detail, /anonymous/, 'named as such');
  }
  {
    // A signed message where the encrypted body belongs.
    const body = JSON.parse(good.envelope).header as string;
    await expect('a body that is not encrypted', await envelopeWith(e2eNotice(), body), 400, 'envelope-malformed');
  }
  {
    // A header that is signed and encrypted (not one-pass signed in the clear).
    const h = (await encrypt({
      message: await createMessage({ text: '{}' }),
      encryptionKeys: cert('th-customs'),
      signingKeys: await readPrivateKey({ armoredKey: pgpKey('vn-customs') }),
    })) as string;
    await expect('an encrypted header', JSON.stringify({ header: h, body: good.body }), 400, 'envelope-malformed');
  }
  await expect(
    'three members in the envelope',
    JSON.stringify({ ...JSON.parse(good.envelope), extra: 'x' }),
    400,
    'envelope-malformed',
  );
  await expect(
    'oversize',
    JSON.stringify({ header: JSON.parse(good.envelope).header, body: 'A'.repeat(2 * 1024 * 1024) }),
    413,
    'too-large',
  );
  t.throws(() => parseE2ePgpBody(good.body, 64), { code: 'openpgp-limits' }, 'the armor bound');
  await expect(
    'an OpenPGP end-to-end notice for a hub-readable operation',
    (
      await seal(e2eNotice({ operation: 'mekong-dragon-6', addressees: ['TH'], tlp: 'AMBER' }), 'vn-customs', [
        { key: cert('th-customs') },
      ])
    ).envelope,
    403,
    'operation-not-end-to-end',
  );
  await expect('the JOSE media type', good.envelope, 400, 'envelope-malformed', 'application/liaison-e2e+json');
});

t.test('a mixed network: OpenPGP seals only for members with OpenPGP certificates', async (t) => {
  const all = e2eNotice({ addressees: ['*'], tlp: 'AMBER' });
  await t.rejects(certsOf(all), /cn-customs has no OpenPGP encryption certificate/);
  const partial = await seal(all, 'vn-customs', await certsOf(e2eNotice()));
  const r = await g.post(partial.envelope, E2E_PGP_MEDIA_TYPE);
  t.equal(r.json.code, 'recipients-mismatch', 'the gateway refuses an envelope that leaves a recipient out');
  t.match(r.json.detail, /cn-customs/);
});

t.test('audit verify checks the header signature and the body hash of an openpgp-e2e entry', async (t: Test) => {
  const { exportArchive } = await import('../broker/audit/export.js');
  const { run } = await import('../broker/cli/liaison.js');
  await waitFor(async () => {
    const r = await authed('vn-customs', `/v1/notices/${notice.id}/proof`);
    return r.status === 200 ? true : undefined;
  }, 'a checkpoint over the notice');
  const archive = await exportArchive(
    g.gw.bus,
    g.config.brokerId,
    g.jwks.keys.filter((k) => k.use === 'sig'),
    g.gw.keyring,
  );
  const file = join(mkdtempSync(join(tmpdir(), 'liaison-e2epgp-audit-')), 'archive.json');
  t.teardown(() => rmSync(file, { force: true }));
  const verify = async (a: unknown) => {
    writeFileSync(file, JSON.stringify(a));
    let out = '';
    const io = { out: (s: string) => void (out += s), err: (s: string) => void (out += s) };
    return { code: await run(['audit', 'verify', '--archive', file], io), out };
  };
  const held = (archive as unknown as { notices: { notice_id: string; signed: string }[] }).notices.find(
    (n) => n.notice_id === notice.id,
  )!;
  t.equal(Buffer.from(held.signed, 'base64url').toString('utf8'), sealed.envelope, 'the archive holds the envelope');
  const ok = await verify(archive);
  t.equal(ok.code, 0, ok.out);
  const forged = JSON.parse(JSON.stringify(archive)) as typeof archive;
  const f = (forged as unknown as { notices: { notice_id: string; signed: string }[] }).notices.find(
    (n) => n.notice_id === notice.id,
  )!;
  const other = JSON.parse((await seal(e2eNotice())).envelope) as { body: string };
  f.signed = Buffer.from(JSON.stringify({ header: JSON.parse(sealed.envelope).header, body: other.body })).toString(
    'base64url',
  );
  const bad = await verify(forged);
  t.equal(bad.code, 1, 'another body under the same header does not verify');
  t.match(bad.out, /body_sha256/);
});

t.test(
  'the CLI seals in OpenPGP when it can, in JOSE when a recipient has no certificate; pull opens both',
  async (t) => {
    const { runCli } = await import('./helpers/cli.js');
    const dir = mkdtempSync(join(tmpdir(), 'liaison-e2epgp-cli-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const cli = (...args: string[]) => runCli([...args, '--url', url, '--data-dir', dataDir]);
    const send = async (n: Record<string, unknown>) => {
      const file = join(dir, `${String(n.id)}.json`);
      writeFileSync(file, JSON.stringify(n, null, 2));
      return cli('notice', 'send', file, '--as', 'vn-customs', '--json');
    };
    const pgp = e2eNotice({ addressees: ['TH'], tlp: 'AMBER' });
    const sent = await send(pgp);
    t.equal(sent.code, 0, sent.stdout + sent.stderr);
    t.match(sent.stderr, /mekong-sealed is end to end: sealed in OpenPGP for th-customs/);
    t.ok(isOpenPgpE2e((await deliveryOf('th-customs', pgp.id)).e2e!), 'delivered in the OpenPGP form');
    const all = e2eNotice({ addressees: ['*'], tlp: 'AMBER' });
    const mixed = await send(all);
    t.equal(mixed.code, 0, mixed.stdout + mixed.stderr);
    t.match(mixed.stderr, /not sealing in OpenPGP: cn-customs has no OpenPGP encryption certificate/);
    t.match(mixed.stderr, /sealed for cn-customs, la-customs, th-customs/);
    t.notOk(isOpenPgpE2e((await deliveryOf('th-customs', all.id)).e2e!), 'delivered in the JOSE form');
    const pulled = await cli('inbox', 'pull', '--as', 'th-customs', '--operation', E2E_OP, '--limit', '500');
    for (const id of [pgp.id, all.id])
      t.match(
        pulled.stdout,
        new RegExp(`${id} ${E2E_OP} from vn-customs[^\\n]*\\n  end to end: opened with this agency's key`),
        `${id} opened by inbox pull`,
      );
    t.notMatch(pulled.stdout, /DOES NOT VERIFY/);
  },
);

t.test('pieces without the gateway: wire checks, inbox shape, the audit on junk, the opener refusals', async (t) => {
  const { parseHeaderMessage } = await import('../adapters/e2e-openpgp/wire.js');
  const { openPgpE2eFormat } = await import('../adapters/e2e-openpgp/format.js');
  const { checkSealedFor } = await import('../broker/ingest/e2e-recipients.js');
  const { RegistrySnapshot } = await import('../broker/registry/model.js');
  const good = await seal(e2eNotice());
  const bin = Buffer.from(dearmorMessage(good.body, { maxArmorBytes: 1 << 22, maxArmorHeaders: 8 }));
  const packets = scanPackets(bin, { maxPackets: 8, keepBodiesUpTo: 4096 });
  const seipd = packets.at(-1)!;
  const armored = (b: Buffer) => armorMessage(b);
  t.throws(
    () => parseE2ePgpBody(armored(bin.subarray(seipd.start)), 1 << 20),
    { code: 'envelope-malformed' },
    'no session key',
  );
  t.throws(
    () => parseE2ePgpBody(armored(bin.subarray(0, seipd.start)), 1 << 20),
    { code: 'envelope-malformed' },
    'no data',
  );
  const first = bin.subarray(packets[0]!.start, packets[0]!.end);
  t.throws(
    () => parseE2ePgpBody(armored(Buffer.concat([first, first, bin.subarray(seipd.start)])), 1 << 20),
    { code: 'recipients-mismatch' },
    'a key id twice',
  );
  const v6 = Buffer.from(first);
  v6[first.length - packets[0]!.length] = 6;
  t.throws(
    () => parseE2ePgpBody(armored(Buffer.concat([v6, bin.subarray(seipd.start)])), 1 << 20),
    { code: 'envelope-malformed' },
    'a version 6 session key',
  );
  t.throws(() => parseHeaderMessage(good.body, 1 << 20), { code: 'envelope-malformed' }, 'an encrypted header');
  t.ok(parseHeaderMessage(good.signedHeader, 1 << 20).length > 0, 'a one-pass signed header');

  const defect = (b: Uint8Array) => openPgpE2eFormat.inboxDelivery.defect(b);
  const enc = (s: string) => new TextEncoder().encode(s);
  t.equal(defect(enc(good.envelope)), null);
  t.match(defect(enc(JSON.stringify({ header: 'a.b.c', body: '{}' }))), /not an OpenPGP end-to-end envelope/);
  t.match(defect(enc('junk')), /not an end-to-end envelope/);

  const audit = openPgpE2eFormat.storedSignatures([]);
  const claim = { signerKid: 'x', originAgency: 'vn-customs', receivedAt: new Date().toISOString(), at: new Date() };
  t.equal((await audit.verify(enc('junk'), claim))?.code, 'notice-signature-invalid', 'the audit on junk');
  t.equal((await audit.verify(enc(good.envelope), claim))?.code, 'notice-signer-unknown', 'and with no key history');

  // An OpenPGP kid is never looked up among JWKs, and a revoked record is not current.
  const seedAgencies = JSON.parse(readFileSync(join(dataDir, 'registry.json'), 'utf8')) as RegistrySeed;
  const th = seedAgencies.agencies.find((a) => a.id === 'th-customs')!;
  const kid = th.openpgp_keys![0]!.kid;
  const snap = (revoked: boolean) =>
    new RegistrySnapshot(
      [{ ...th, openpgp_keys: [{ ...th.openpgp_keys![0]!, status: revoked ? 'revoked' : 'active' }] }],
      [],
    );
  t.doesNotThrow(() => checkSealedFor(['th-customs'], [kid], snap(false), new Date(), 'openpgp-e2e'));
  t.throws(() => checkSealedFor(['th-customs'], [kid], snap(false), new Date()), { code: 'recipients-mismatch' });
  t.throws(() => checkSealedFor(['th-customs'], [kid], snap(true), new Date(), 'openpgp-e2e'), {
    code: 'recipients-mismatch',
    publicDetail: /not a current encryption key/,
  });

  // Routing's side: the plan's key, and the sealer labels each copy with the certificate the body names.
  const { encryptionKeyOwner } = await import('../adapters/e2e-openpgp/recipient-keys.js');
  const agencies = seedAgencies.agencies;
  const at = new Date();
  t.equal(openPgpE2eFormat.deliveryKey(th, at)?.kid, kid);
  t.equal(
    openPgpE2eFormat.deliveryKey(
      agencies.find((a) => a.id === 'cn-customs')!,
      at,
    ),
    undefined,
  );
  const copies = await openPgpE2eFormat.deliverySealer().seal(
    enc(good.envelope),
    ['th-customs', 'cn-customs'].map((id) => ({ kid: 'plan', agency: agencies.find((a) => a.id === id)! })),
    { noticeId: 'n', format: 'openpgp-e2e' },
    at,
  );
  t.same(
    copies.map((c) => c && { kid: c.kid, same: Buffer.from(c.body).equals(enc(good.envelope)) }),
    [{ kid, same: true }, undefined],
    'the envelope as posted, for th-customs only',
  );
  // The primary (signing-only) key's id names no encryption key.
  t.equal(await encryptionKeyOwner(agencies, kid.slice(-16), at), undefined);
  const thIds: string[] = [];
  for (const id of parseE2ePgpBody(good.body, 1 << 20).keyIds)
    if ((await encryptionKeyOwner([th], id, at))?.kid === kid) thIds.push(id);
  t.equal(thIds.length, 1, "one session key is for th-customs' encryption subkey");
  t.equal(await encryptionKeyOwner([th, th], thIds[0]!, at), undefined, 'two records claiming it: none');
  // The recipient's refusals.
  const n = e2eNotice();
  const s = await seal(n);
  const delivery = (e2e: string | undefined, patch: Record<string, unknown> = {}) => ({
    e2e,
    notice_id: n.id as string,
    origin: { agency: 'vn-customs' },
    received_at: new Date().toISOString(),
    ...patch,
  });
  const open = (d: ReturnType<typeof delivery>) =>
    openEndToEndOpenPgp(d, pgpKey('th-customs'), originPgpKeys, validator);
  t.same((await open(delivery(s.envelope))).notice, n, 'opens');
  await t.rejects(open(delivery(undefined)), { code: 'decrypt-failed' }, 'not an e2e delivery');
  await t.rejects(open(delivery('junk')), { code: 'routing-header-mismatch' }, 'not an envelope');
  await t.rejects(
    open(delivery(JSON.stringify({ header: 'a.b.c', body: '{}' }))),
    { code: 'routing-header-mismatch' },
    'the JOSE form',
  );
  const other = await seal(e2eNotice());
  await t.rejects(
    open(delivery(JSON.stringify({ header: s.signedHeader, body: other.body }))),
    { code: 'routing-header-mismatch' },
    'another body',
  );
  await t.rejects(
    open(delivery(await envelopeWith({ ...n, tlp: 'AMBER' }, s.body))),
    { code: 'routing-header-mismatch', message: /tlp/ },
    'a notice that says otherwise than its header',
  );
  await t.rejects(open(delivery(s.envelope, { notice_id: 'other' })), { code: 'origin-mismatch' }, 'other labels');
  const bad = { ...n, tlp: 'PURPLE' };
  const badSealed = await seal(bad, 'vn-customs', await certsOf(n));
  await t.rejects(open(delivery(badSealed.envelope)), { code: 'notice-schema-invalid' }, 'an invalid notice');
  t.notOk(isOpenPgpE2e('junk'));
});

// Last: it revokes la-customs' certificate.
t.test('a certificate revoked in the registry is refused at once, though its key ids were resolved', async (t) => {
  const n = e2eNotice();
  const certs = await certsOf(n);
  const first = await g.post((await seal(n, 'vn-customs', certs)).envelope, E2E_PGP_MEDIA_TYPE);
  t.equal(first.status, 202, 'accepted while the certificate is current (its key ids now resolved)');
  const la = g.gw.registry.snapshot.agency('la-customs')!.openpgp_keys![0]!.kid;
  const token = await makeClientAssertion('hub-operator', g.creds('hub-operator').signing, g.config.brokerId);
  const revoked = await g.gw.app.inject({
    method: 'POST',
    url: `/v1/admin/agencies/la-customs/keys/${la}/revoke`,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ reason: 'device lost' }),
  });
  t.equal(revoked.statusCode, 201, revoked.body);
  const again = await g.post((await seal(e2eNotice(), 'vn-customs', certs)).envelope, E2E_PGP_MEDIA_TYPE);
  t.equal(again.status, 400, JSON.stringify(again.json));
  t.equal(again.json.code, 'recipients-mismatch');
  t.match(again.json.detail, /not a current OpenPGP encryption key/);
});
