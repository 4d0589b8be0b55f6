/**
 * `liaison inbox pull` for an agency with `delivery_format: openpgp`: the CLI
 * decrypts each delivery with the agency's OpenPGP key, checks the broker's
 * OpenPGP signature on it, then the origin's signature inside (OpenPGP or
 * JOSE), and prints the notice as for a JWE. A delivery changed on the way
 * (a stub in front of the gateway rewrites the inbox page) is refused, saying why.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { config, createMessage, encrypt, enums, generateKey, readKey, readPrivateKey } from 'openpgp';
import type { Agency } from '../broker/registry/model.js';
import type { InboxDelivery } from '../broker/core/inbox-delivery.js';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { openOpenPgpDelivery } from '../broker/agency-client/open-delivery.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { runCli } from './helpers/cli.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

t.setTimeout(120_000);
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { webhook: false });
const url = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const brokerPublic = g.jwks as unknown as { openpgp: string };
const brokerFpr = g.gw.keyring.openpgp!.fingerprint;

// gb-border-force takes its deliveries as OpenPGP messages, to its demo OpenPGP key.
const gbRecord = structuredClone(g.gw.registry.snapshot.agency('gb-border-force')) as Agency;
gbRecord.delivery_format = 'openpgp';
await g.gw.registry.putAgency(gbRecord);
await waitFor(
  () => (g.gw.registry.snapshot.agency('gb-border-force')?.delivery_format === 'openpgp' ? true : undefined),
  'registry change',
);

const toGb = (from: string, country: string) =>
  sampleNotice('seizure-report', {
    operation: 'aircop',
    origin: { country, agency: from },
    addressees: ['gb-border-force'],
    tlp: 'GREEN',
  });
// From an OpenPGP origin (fr-douane, signed and encrypted with openpgp.js) and from a JOSE origin (th-customs).
const fromFr = toGb('fr-douane', 'FR');
const fr = g.creds('fr-douane').openpgp!;
const pgpEnvelope = await encrypt({
  message: await createMessage({ text: JSON.stringify(fromFr) }),
  encryptionKeys: await readKey({ armoredKey: brokerPublic.openpgp }),
  signingKeys: await readPrivateKey({ armoredKey: fr.private_armored }),
});
const accepted = (r: { status: number; json: unknown }) => {
  if (r.status !== 202) throw new Error(`not accepted: ${JSON.stringify(r.json)}`);
};
accepted(await g.post(pgpEnvelope, 'application/pgp-encrypted'));
const fromTh = toGb('th-customs', 'TH');
accepted(await g.post((await g.seal(fromTh, 'th-customs')).jwe));

const gb = g.creds('gb-border-force');
const client = new InboxClient({
  url,
  agency: 'gb-border-force',
  signingKey: gb.signing,
  encryptionKey: gb.encryption,
  openPgpKey: gb.openpgp!.private_armored,
});
const deliveries = await waitFor(
  async () => {
    const page = await client.pull({ limit: 100 });
    return page.deliveries.length >= 2 ? page.deliveries : undefined;
  },
  'both deliveries to gb-border-force',
  15_000,
);
const byId = (id: string) => deliveries.find((d) => d.notice_id === id)!;

t.test(
  'inbox pull opens OpenPGP deliveries: the broker signature, then the origin signature, then the notice',
  async (t) => {
    t.match(byId(fromFr.id).openpgp, /^-----BEGIN PGP MESSAGE-----/, 'OpenPGP deliveries');
    t.equal(byId(fromFr.id).jwe, undefined);
    const pulled = await runCli(['inbox', 'pull', '--as', 'gb-border-force', '--url', url, '--data-dir', g.dataDir]);
    t.equal(pulled.code, 0, pulled.stdout + pulled.stderr);
    t.notMatch(pulled.stdout, /DOES NOT VERIFY/);
    const frKid = g.gw.registry.snapshot.agency('fr-douane')!.openpgp_keys![0]!.kid;
    const thKid = g.gw.registry.snapshot.agency('th-customs')!.keys.find((k) => k.use === 'sig')!.kid;
    t.match(pulled.stdout, `${fromFr.id} aircop from fr-douane (FR)`);
    t.match(pulled.stdout, `OpenPGP delivery signed by the broker (${brokerFpr}); signature verified (${frKid})`);
    t.match(pulled.stdout, `OpenPGP delivery signed by the broker (${brokerFpr}); signature verified (${thKid})`);

    const json = await runCli([
      'inbox',
      'pull',
      '--as',
      'gb-border-force',
      '--url',
      url,
      '--data-dir',
      g.dataDir,
      '--json',
    ]);
    t.equal(json.code, 0, json.stderr);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            notice_id?: string;
            verified?: boolean;
            notice?: unknown;
            broker_fingerprint?: string;
            signer_kid?: string;
          },
      );
    const frLine = lines.find((l) => l.notice_id === fromFr.id);
    const thLine = lines.find((l) => l.notice_id === fromTh.id);
    t.match(frLine, { verified: true, broker_fingerprint: brokerFpr, signer_kid: frKid });
    t.same(frLine?.notice, fromFr, 'the OpenPGP-origin notice, opened and verified');
    t.match(thLine, { verified: true, broker_fingerprint: brokerFpr, signer_kid: thKid });
    t.same(thLine?.notice, fromTh, 'the JOSE-origin notice, opened and verified');
  },
);

/** The gateway behind a stub that passes /v1/inbox pages through `change`. */
async function tampering(change: (d: InboxDelivery) => Promise<InboxDelivery>) {
  const server = createServer((req, res) => {
    void (async () => {
      const up = await fetch(`${url}${req.url ?? '/'}`, {
        headers: { authorization: req.headers.authorization ?? '' },
      });
      let body = await up.text();
      if (new URL(req.url ?? '/', url).pathname === '/v1/inbox' && up.ok) {
        const page = JSON.parse(body) as { deliveries: InboxDelivery[] };
        page.deliveries = await Promise.all(page.deliveries.map(change));
        body = JSON.stringify(page);
      }
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' }).end(body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('a delivery changed on the way is refused, saying why', async (t) => {
  // Bytes changed inside the encrypted data.
  const flipped = await tampering(async (d) => {
    const lines = d.openpgp!.split('\n');
    const line = lines[5]!;
    lines[5] = line.slice(0, 10) + (line[10] === 'A' ? 'B' : 'A') + line.slice(11);
    return { ...d, openpgp: lines.join('\n') };
  });
  const a = await runCli(['inbox', 'pull', '--as', 'gb-border-force', '--url', flipped, '--data-dir', g.dataDir]);
  t.equal(a.code, 1);
  t.match(a.stdout, `${fromFr.id}: DOES NOT VERIFY (the delivery does not decrypt with this agency's OpenPGP key`);

  // Re-sealed to the agency by someone other than the broker: same content, another signer.
  const { privateKey: forger } = await generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'not the broker' }],
    format: 'object',
  });
  const agencyKey = await readKey({
    armoredKey: g.gw.registry.snapshot.agency('gb-border-force')!.openpgp_keys![0]!.armored,
  });
  const forged = await tampering(async (d) => ({
    ...d,
    openpgp: await encrypt({
      message: await createMessage({ text: 'a notice the broker never sent' }),
      encryptionKeys: agencyKey,
      signingKeys: forger,
    }),
  }));
  const b = await runCli([
    'inbox',
    'pull',
    '--as',
    'gb-border-force',
    '--url',
    forged,
    '--data-dir',
    g.dataDir,
    '--json',
  ]);
  t.equal(b.code, 1);
  const refused = JSON.parse(b.stdout.split('\n')[0]!) as { verified: boolean; error: string; message: string };
  t.same({ verified: refused.verified, error: refused.error }, { verified: false, error: 'signature-invalid' });
  t.match(refused.message, /^the delivery is not signed by the broker's OpenPGP key/);
});

t.test("without the agency's OpenPGP key, or with a broker key that did not sign it", async (t) => {
  const creds = join(g.dataDir, 'gb-jose-only.json');
  const { openpgp: _, ...joseOnly } = gb;
  writeFileSync(creds, JSON.stringify(joseOnly));
  const pulled = await runCli(['inbox', 'pull', '--credentials', creds, '--url', url]);
  t.equal(pulled.code, 1);
  t.match(
    pulled.stdout,
    /DOES NOT VERIFY \(an OpenPGP delivery, and this agency's credentials hold no OpenPGP private key/,
  );

  const d = byId(fromFr.id);
  const none = async () => [];
  const { publicKey: other } = await generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'another broker' }],
    format: 'armored',
  });
  await t.rejects(
    openOpenPgpDelivery(d, gb.openpgp!.private_armored, other, none, none),
    { code: 'signature-invalid' },
    'another broker key',
  );
  await t.rejects(openOpenPgpDelivery(d, 'not a key', brokerPublic.openpgp, none, none), { code: 'key-unknown' });
  await t.rejects(
    openOpenPgpDelivery(d, g.creds('fr-douane').openpgp!.private_armored, brokerPublic.openpgp, none, none),
    { code: 'decrypt-failed' },
    "another agency's key",
  );
  // Anyone can encrypt to the agency: a compression bomb is stopped while it inflates, before any signature check.
  const bomb = await encrypt({
    message: await createMessage({ binary: new Uint8Array(9 * 1024 * 1024) }),
    encryptionKeys: await readKey({
      armoredKey: g.gw.registry.snapshot.agency('gb-border-force')!.openpgp_keys![0]!.armored,
    }),
    config: { ...config, preferredCompressionAlgorithm: enums.compression.zlib },
  });
  t.ok(bomb.length < 100_000, 'a small message');
  await t.rejects(
    openOpenPgpDelivery({ ...d, openpgp: bomb }, gb.openpgp!.private_armored, brokerPublic.openpgp, none, none),
    { code: 'decrypt-failed', message: /size/i },
    'decompression bounded',
  );
  await t.rejects(
    openOpenPgpDelivery({ ...d, openpgp: undefined }, gb.openpgp!.private_armored, brokerPublic.openpgp, none, none),
    { code: 'decrypt-failed' },
  );
  await t.rejects(
    openOpenPgpDelivery(d, gb.openpgp!.private_armored, brokerPublic.openpgp, none, none),
    { code: 'key-unknown' },
    "without the origin's keys",
  );
  await t.rejects(
    openOpenPgpDelivery(
      { ...d, notice_id: fromTh.id },
      gb.openpgp!.private_armored,
      brokerPublic.openpgp,
      none,
      async () => g.gw.registry.snapshot.agency('fr-douane')!.openpgp_keys!,
    ),
    { code: 'origin-mismatch' },
  );
});
