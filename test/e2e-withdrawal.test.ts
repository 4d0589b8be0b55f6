/**
 * Withdrawals and corrections in an end-to-end operation (docs/end-to-end.md,
 * "Withdrawals"), on a real nats-server through the real gateway: the routing
 * header names only the superseded notice; the hub applies the withdrawal
 * rules to it and checks the body is sealed for exactly the superseded
 * notice's recipients; each recipient opens and validates the correction;
 * the hub can read neither its reason nor its correction, and refuses a
 * hub-readable withdrawal there.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign, generalDecrypt, importJWK, type GeneralJWE, type JWK } from 'jose';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import {
  openEndToEnd,
  recipientKeys,
  routingHeaderOf,
  sealEndToEnd,
  type OperationDirectory,
} from '../broker/agency-client/end-to-end.js';
import {
  openEndToEndOpenPgp,
  recipientCertificates,
  sealEndToEndOpenPgp,
} from '../broker/agency-client/end-to-end-openpgp.js';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { buildWithdrawal } from '../broker/agency-client/withdrawal.js';
import { credentialsPath, ensureDemoNetwork, readCredentials } from '../broker/demo/demo-network.js';
import { makeOpenPgpAgencyKey } from '../broker/keys/openpgp-agency.js';
import type { RegistrySeed } from '../broker/registry/model.js';
import { ROUTING_HEADER_TYP } from '../adapters/e2e-jose/wire.js';
import { sha256Hex } from '../broker/core/sha256.js';
import { createNoticeValidator } from '../broker/schemas/notice-validator.js';
import { runCli } from './helpers/cli.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { inboxClients } from './helpers/inbox.js';
import { openE2eWithJwcrypto } from './helpers/jwcrypto.js';
import { findMarker, scanStreams } from './helpers/marker-scan.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(180_000);
const nats = await startTestNats(t);
// vn-customs, th-customs and la-customs also hold OpenPGP keys, so both forms can be sent (as test/e2e-openpgp.test.ts).
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-e2ewd-'));
t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
await ensureDemoNetwork(dataDir);
{
  const seedFile = join(dataDir, 'registry.json');
  const seed = JSON.parse(readFileSync(seedFile, 'utf8')) as RegistrySeed;
  for (const id of ['vn-customs', 'th-customs', 'la-customs']) {
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
  {
    leaseTtlSeconds: 3,
    routerAckWaitSeconds: 2,
    checkpointIntervalMs: 200,
    checkpointEveryEntries: 1,
    rateLimitMax: 100_000,
  },
  { dataDir },
);
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;
const E2E = 'application/liaison-e2e+json';
const OP = 'mekong-sealed';
const client = inboxClients(g, url);
const validator = createNoticeValidator();
const originKeys = (agency: string) => client('th-customs').agencyKeys(agency);
/** In the correction's reason and text: the recipients read it, the hub must not. */
const MARKER = `E2E-CORRECTION-${randomBytes(6).toString('hex')}`;

async function directory(agency: string): Promise<OperationDirectory> {
  const token = await makeClientAssertion(agency, g.creds(agency).signing, g.config.brokerId);
  const res = await fetch(`${url}/v1/operations/${OP}/members`, { headers: { authorization: `Bearer ${token}` } });
  return (await res.json()) as OperationDirectory;
}
const deliveryOf = (agency: string, id: string) =>
  waitFor(
    async () => (await client(agency).pull({ limit: 500 })).deliveries.find((d) => d.notice_id === id),
    `${agency}'s delivery of ${id}`,
  );
const keyOf = (dir: OperationDirectory, agency: string) => {
  const m = dir.members.find((x) => x.agency === agency)!;
  return { key: m.encryption_keys[m.encryption_keys.length - 1]! };
};
/** A withdrawal by vn-customs of `supersedes`, as the CLI builds it. */
const withdrawalOf = (supersedes: string, correction?: string) =>
  buildWithdrawal({
    id: crypto.randomUUID(),
    supersedes,
    origin: { agency: 'vn-customs', country: 'VN' },
    operation: OP,
    tlp: 'RED',
    recipients: ['la-customs', 'th-customs'],
    reason: `wrong seal number ${MARKER}`,
    correction,
    language: 'en',
    priority: 'high',
    now: new Date(),
  });
/** An envelope whose body seals `notice` for `keys`, under a routing header with `patch` applied, signed by vn-customs. */
async function sealedWithHeader(notice: Record<string, unknown>, keys: { key: JWK }[], patch: Record<string, unknown>) {
  const signing = g.creds('vn-customs').signing;
  const { body } = await sealEndToEnd(notice, signing, keys);
  const header = { ...routingHeaderOf(notice, sha256Hex(Buffer.from(body, 'utf8'))), ...patch };
  const hjws = await new CompactSign(new TextEncoder().encode(JSON.stringify(header)))
    .setProtectedHeader({ alg: 'EdDSA', kid: signing.kid!, typ: ROUTING_HEADER_TYP })
    .sign(await importJWK(signing, 'EdDSA'));
  return JSON.stringify({ header: hjws, body });
}

// The original: vn-customs to th-customs and la-customs; cn-customs, a member too, does not get it.
const dir = await directory('vn-customs');
const original = sampleNotice('seizure-report', {
  operation: OP,
  origin: { country: 'VN', agency: 'vn-customs' },
  addressees: ['th-customs', 'la-customs'],
  tlp: 'RED',
});
const posted = await g.post(
  (await sealEndToEnd(original, g.creds('vn-customs').signing, recipientKeys(original, dir))).envelope,
  E2E,
);
await deliveryOf('th-customs', original.id);
await deliveryOf('la-customs', original.id);
const recipients = [keyOf(dir, 'la-customs'), keyOf(dir, 'th-customs')];

t.test('a correction with `liaison notice withdraw`: sealed for the two recipients, opened by each', async (t) => {
  t.equal(posted.status, 202, JSON.stringify(posted.json));
  const w = await runCli([
    'notice',
    'withdraw',
    original.id,
    '--as',
    'vn-customs',
    '--reason',
    `wrong seal number ${MARKER}`,
    '--correction',
    `the seal number is VN-${MARKER}`,
    '--url',
    url,
    '--data-dir',
    g.dataDir,
    '--json',
  ]);
  t.equal(w.code, 0, w.stdout + w.stderr);
  t.match(w.stderr, 'is end to end: sealed for la-customs, th-customs', 'in JOSE, the form of the original');
  const receipt = JSON.parse(w.stdout) as { notice_id: string; recipients: string[] };
  t.same(receipt.recipients, ['la-customs', 'th-customs'], "exactly the superseded notice's recipients");
  let envelope = '';
  for (const agency of ['th-customs', 'la-customs']) {
    const d = await deliveryOf(agency, receipt.notice_id);
    t.type(d.e2e, 'string', `${agency}: an end-to-end delivery`);
    envelope = d.e2e!;
    const opened = await openEndToEnd(d, g.creds(agency).encryption, originKeys, validator);
    const body = (opened.notice as any).body;
    t.equal(body.action, 'correct');
    t.equal(body.supersedes, original.id, `${agency} opens the correction of the notice`);
    t.match(body.correction, MARKER, `${agency} reads the correction`);
    t.equal(opened.routingHeader.supersedes, original.id, 'the routing header names the superseded notice');
    t.ok(await findMarker(Buffer.from(JSON.stringify(opened.notice)), [MARKER]), 'positive control: the scanner');
    const py = openE2eWithJwcrypto(d.e2e!, g.creds(agency).encryption, g.creds('vn-customs').signing);
    t.equal(py.status, 0, py.stderr);
    t.same(JSON.parse(py.stdout).notice, opened.notice, `python3-jwcrypto opens it for ${agency} too`);
  }
  const cn = await client('cn-customs').pull({ limit: 500 });
  t.notOk(
    cn.deliveries.some((d) => d.notice_id === receipt.notice_id),
    'cn-customs, a member that did not get the notice, gets no correction',
  );

  // The hub: its header holds no reason, no broker key opens the body, no stream or log line holds the text.
  const { header, body } = JSON.parse(envelope) as { header: string; body: string };
  const routing = JSON.parse(Buffer.from(header.split('.')[1]!, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  t.same(Object.keys(routing).sort(), [
    'addressees',
    'body_sha256',
    'created_at',
    'id',
    'operation',
    'origin',
    'schema_version',
    'supersedes',
    'tlp',
    'type',
  ]);
  const brokerKeys = g.gw.keyring.file.encryption.filter((k) => k.crv === 'X25519' || k.crv === 'P-256');
  t.ok(brokerKeys.length >= 1);
  for (const k of brokerKeys) {
    const opened = await generalDecrypt(JSON.parse(body) as GeneralJWE, await importJWK(k, 'ECDH-ES+A256KW')).then(
      () => true,
      () => false,
    );
    t.notOk(opened, `broker key ${String(k.kid)} does not open it`);
  }
  const scan = await scanStreams(g.gw.bus.jsm, [MARKER]);
  t.ok(scan.messages > 10, `${scan.messages} messages scanned`);
  t.same(scan.found, [], 'no stream holds the reason or the correction');
  t.notOk(
    g.logLines.some((l) => l.includes(MARKER)),
    'no gateway log line holds them',
  );
});

t.test('the hub refuses what breaks the withdrawal rules, from the routing header', async (t) => {
  const expect = async (what: string, envelope: string, status: number, code: string, type = E2E) => {
    const r = await g.post(envelope, type);
    t.equal(r.status, status, `${what}: ${JSON.stringify(r.json)}`);
    t.equal(r.json.code, code, `${what}: ${code}`);
  };
  // th-customs's own notice to vn-customs: not vn-customs's to withdraw.
  const theirs = sampleNotice('seizure-report', {
    operation: OP,
    origin: { country: 'TH', agency: 'th-customs' },
    addressees: ['vn-customs'],
    tlp: 'RED',
  });
  const thDir = await directory('th-customs');
  const p = await g.post(
    (await sealEndToEnd(theirs, g.creds('th-customs').signing, recipientKeys(theirs, thDir))).envelope,
    E2E,
  );
  t.equal(p.status, 202, JSON.stringify(p.json));
  const notMine = withdrawalOf(theirs.id);
  await expect(
    "another agency's notice",
    (await sealEndToEnd(notMine, g.creds('vn-customs').signing, [keyOf(dir, 'th-customs')])).envelope,
    403,
    'policy-denied',
  );
  // Sealed for one recipient of two, and for the two plus a member that never got the notice.
  const w = withdrawalOf(original.id);
  await expect(
    'sealed for fewer',
    (await sealEndToEnd(w, g.creds('vn-customs').signing, [keyOf(dir, 'th-customs')])).envelope,
    400,
    'recipients-mismatch',
  );
  await expect(
    'sealed for more',
    (await sealEndToEnd(w, g.creds('vn-customs').signing, [...recipients, keyOf(dir, 'cn-customs')])).envelope,
    400,
    'recipients-mismatch',
  );
  // A seizure report whose routing header names a superseded notice.
  const report = sampleNotice('seizure-report', {
    operation: OP,
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs', 'la-customs'],
    tlp: 'RED',
  });
  await expect(
    'supersedes on a seizure report',
    await sealedWithHeader(report, recipients, { supersedes: original.id }),
    422,
    'schema-invalid',
  );
  // A withdrawal whose header names none.
  await expect(
    'a withdrawal without supersedes',
    await sealedWithHeader(w, recipients, { supersedes: undefined }),
    422,
    'schema-invalid',
  );
  // Hub-readable: its reason would reach the hub.
  await expect(
    'hub-readable in an end-to-end operation',
    (await g.seal(withdrawalOf(original.id), 'vn-customs')).jwe,
    403,
    'operation-end-to-end',
    'application/jose',
  );
});

t.test("a recipient refuses a withdrawal whose body supersedes another notice than its header's", async (t) => {
  // vn-customs's second notice to the same two: the body names it, the header names the first.
  const second = sampleNotice('seizure-report', {
    operation: OP,
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs', 'la-customs'],
    tlp: 'RED',
  });
  const p = await g.post((await sealEndToEnd(second, g.creds('vn-customs').signing, recipients)).envelope, E2E);
  t.equal(p.status, 202, JSON.stringify(p.json));
  const w = withdrawalOf(second.id);
  const posted = await g.post(await sealedWithHeader(w, recipients, { supersedes: original.id }), E2E);
  t.equal(posted.status, 202, 'the hub cannot tell');
  const d = await deliveryOf('th-customs', w.id as string);
  await t.rejects(openEndToEnd(d, g.creds('th-customs').encryption, originKeys, validator), {
    code: 'routing-header-mismatch',
  });
  await t.rejects(client('th-customs').open(d), { code: 'routing-header-mismatch' }, 'the inbox client too');
  const py = openE2eWithJwcrypto(d.e2e!, g.creds('th-customs').encryption, g.creds('vn-customs').signing);
  t.not(py.status, 0, 'python3-jwcrypto refuses it too');
  t.match(py.stderr, 'supersedes');
});

t.test('the OpenPGP form: a correction of an openpgp-e2e notice is sealed in OpenPGP, opened by each', async (t) => {
  const pgp = sampleNotice('seizure-report', {
    operation: OP,
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs', 'la-customs'],
    tlp: 'RED',
  });
  const certs = await recipientCertificates(pgp, await directory('vn-customs'));
  const p = await g.post(
    (await sealEndToEndOpenPgp(pgp, g.creds('vn-customs').openpgp!.private_armored, certs)).envelope,
    'application/liaison-e2e-pgp+json',
  );
  t.equal(p.status, 202, JSON.stringify(p.json));
  await deliveryOf('th-customs', pgp.id);
  await deliveryOf('la-customs', pgp.id);
  // Credentials without the OpenPGP key cannot seal in the original's form: the CLI says so, and sends nothing.
  const { openpgp: _key, ...joseOnly } = g.creds('vn-customs');
  const credsFile = join(dataDir, 'vn-jose-only.json');
  writeFileSync(credsFile, JSON.stringify(joseOnly), { mode: 0o600 });
  const refused = await runCli([
    'notice',
    'withdraw',
    pgp.id,
    '--credentials',
    credsFile,
    '--reason',
    'x',
    '--url',
    url,
  ]);
  t.not(refused.code, 0, 'refused');
  t.match(refused.stderr, 'cannot seal end to end in OpenPGP: the credentials hold no OpenPGP key');
  const w = await runCli([
    'notice',
    'withdraw',
    pgp.id,
    '--as',
    'vn-customs',
    '--reason',
    `wrong seal ${MARKER}`,
    '--correction',
    `seal VN-${MARKER}`,
    '--url',
    url,
    '--data-dir',
    g.dataDir,
    '--json',
  ]);
  t.equal(w.code, 0, w.stdout + w.stderr);
  t.match(w.stderr, 'sealed in OpenPGP for la-customs, th-customs', 'in the form of the original');
  const receipt = JSON.parse(w.stdout) as { notice_id: string; recipients: string[] };
  t.same(receipt.recipients, ['la-customs', 'th-customs']);
  const originPgp = (agency: string) =>
    new InboxClient({
      url,
      agency: 'th-customs',
      signingKey: g.creds('th-customs').signing,
      encryptionKey: g.creds('th-customs').encryption,
      brokerId: g.config.brokerId,
    }).agencyOpenPgpKeys(agency);
  for (const agency of ['th-customs', 'la-customs']) {
    const d = await deliveryOf(agency, receipt.notice_id);
    const opened = await openEndToEndOpenPgp(d, g.creds(agency).openpgp!.private_armored, originPgp, validator);
    t.equal((opened.notice as any).body.supersedes, pgp.id, `${agency} opens the correction`);
    t.match((opened.notice as any).body.correction, MARKER, `${agency} reads the correction`);
    t.equal(opened.routingHeader.supersedes, pgp.id);
  }
  const scan = await scanStreams(g.gw.bus.jsm, [MARKER]);
  t.same(scan.found, [], 'no stream holds the OpenPGP correction either');
  t.notOk(
    g.logLines.some((l) => l.includes(MARKER)),
    'nor a gateway log line',
  );
});
