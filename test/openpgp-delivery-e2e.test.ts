import t, { type Test } from 'tap';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { InboxClient } from '../broker/agency-client/inbox-client.js';
import { openDelivery } from '../broker/agency-client/open-delivery.js';
import { signatureAlgsFor } from '../broker/keys/jwk.js';
import type { Agency } from '../broker/registry/model.js';
import type { InboxDelivery } from '../broker/core/inbox-delivery.js';
import { startGpg } from './helpers/gpg.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';

/**
 * OpenPGP through routing, end to end on a real NATS and GnuPG:
 *  - an OpenPGP-origin notice reaches a JOSE agency in a JWE (`cty: pgp-signed`) that openDelivery opens and verifies;
 *  - an agency with `delivery_format: 'openpgp'` and a GnuPG-made key pulls (and follows) OpenPGP deliveries,
 *    which GnuPG decrypts, checking the broker's signature and then the origin's.
 */
t.setTimeout(180_000);
const PGP = 'application/pgp-encrypted';
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { leaseTtlSeconds: 3, routerAckWaitSeconds: 2 });
await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const url = `http://127.0.0.1:${(g.gw.app.server.address() as AddressInfo).port}`;
const gpg = startGpg(t);
const brokerFpr = g.gw.keyring.openpgp!.fingerprint;
await gpg.importKey((await g.gw.app.inject({ method: 'GET', url: '/v1/keys' })).json<{ openpgp: string }>().openpgp);
// gb-border-force's demo OpenPGP key (made by openpgp.js) signs in GnuPG; its fingerprint is registered.
const gb = g.creds('gb-border-force').openpgp!;
await gpg.importKey(gb.private_armored);

const client = (agency: string) =>
  new InboxClient({
    url,
    agency,
    signingKey: g.creds(agency).signing,
    encryptionKey: g.creds(agency).encryption,
    brokerId: g.config.brokerId,
  });
const aircop = (from: string, country: string, addressees: string[]) =>
  sampleNotice('seizure-report', { operation: 'aircop', origin: { country, agency: from }, addressees, tlp: 'GREEN' });
const delivered = (agency: string, noticeId: string) =>
  waitFor(
    async () => (await client(agency).pull({ limit: 500 })).deliveries.find((d) => d.notice_id === noticeId),
    `delivery of ${noticeId} to ${agency}`,
    15_000,
  );

async function postPgp(t: Test, notice: Record<string, unknown>) {
  const res = await g.post(await gpg.signEncrypt(JSON.stringify(notice), [gb.fingerprint], [brokerFpr]), PGP);
  t.equal(res.status, 202, res.status === 202 ? 'accepted' : JSON.stringify(res.json));
}

t.test(
  'an OpenPGP-origin notice: a JOSE agency decrypts its JWE and verifies the origin OpenPGP signature',
  async (t) => {
    const notice = aircop('gb-border-force', 'GB', ['th-customs']);
    await postPgp(t, notice);
    const d = await delivered('th-customs', notice.id);
    t.equal(
      decodeProtectedHeader(JSON.parse(d.jwe!) as { protected: string }).cty,
      'pgp-signed',
      'the JWE names its inner format',
    );
    const keys = await client('th-customs').agencyOpenPgpKeys('gb-border-force');
    t.ok(
      keys.some((k) => k.kid === gb.fingerprint && /BEGIN PGP PUBLIC KEY BLOCK/.test(k.armored)),
      'the key directory lists the OpenPGP certificate',
    );
    t.notOk(
      keys.some((k) => /PRIVATE/.test(k.armored)),
      'public key blocks only',
    );
    const opened = await client('th-customs').open(d);
    t.same(opened.notice, notice, 'decrypted and verified');
    t.equal(opened.format, 'openpgp');
    t.equal(opened.signerKid, gb.fingerprint);
    t.match(opened.jws, /^-----BEGIN PGP MESSAGE-----/, "the origin's signed message as stored");
    // Without the origin's OpenPGP keys, or with a key window that excludes the receipt time, it does not verify.
    const jwk = g.creds('th-customs').encryption;
    await t.rejects(
      openDelivery(d, jwk, async () => []),
      { code: 'key-unknown' },
    );
    const gbRecord = g.gw.registry.snapshot.agency('gb-border-force')!.openpgp_keys!;
    await t.rejects(
      openDelivery(
        d,
        jwk,
        async () => [],
        async () => gbRecord.map((k) => ({ ...k, not_before: '2999-01-01T00:00:00Z' })),
      ),
      { code: 'key-unknown' },
    );
    await t.rejects(
      openDelivery(
        d,
        jwk,
        async () => [],
        async () => [],
      ),
      { code: 'key-unknown' },
    );
  },
);

t.test(
  'delivery_format openpgp: a GnuPG agency pulls OpenPGP deliveries; GnuPG checks the broker, then the origin',
  async (t) => {
    const fpr = await gpg.genKey('VN Customs <pgp@customs.gov.vn>', 'ed25519');
    const vn = structuredClone(g.gw.registry.snapshot.agency('vn-customs')) as Agency;
    vn.openpgp_keys = [
      { kid: fpr, use: 'sig', format: 'openpgp', armored: await gpg.exportPublic(fpr), status: 'active' },
    ];
    vn.delivery_format = 'openpgp';
    await g.gw.registry.putAgency(vn);
    await waitFor(
      () => (g.gw.registry.snapshot.agency('vn-customs')?.delivery_format === 'openpgp' ? true : undefined),
      'registry change',
    );

    // From an OpenPGP origin (gb-border-force) and from a JOSE origin (th-customs).
    const fromGb = aircop('gb-border-force', 'GB', ['vn-customs']);
    await postPgp(t, fromGb);
    const fromTh = aircop('th-customs', 'TH', ['vn-customs']);
    t.equal((await g.post((await g.seal(fromTh, 'th-customs')).jwe)).status, 202);

    const checkBroker = async (d: InboxDelivery) => {
      t.equal(d.jwe, undefined, 'no JWE');
      t.match(d.openpgp, /^-----BEGIN PGP MESSAGE-----/, 'an armored OpenPGP message');
      const out = await gpg.run(['--status-fd', '2', '--decrypt'], { input: d.openpgp! });
      t.match(out.stderr, new RegExp(`VALIDSIG [0-9A-F]+ .* ${brokerFpr}`), "GnuPG: the broker's OpenPGP signature");
      t.match(out.stderr, /DECRYPTION_OKAY/);
      return out.stdout;
    };

    const dGb = await delivered('vn-customs', fromGb.id);
    const inner = await gpg.run(['--status-fd', '2', '--decrypt'], { input: await checkBroker(dGb) });
    t.match(
      inner.stderr,
      new RegExp(`VALIDSIG [0-9A-F]+ .* ${gb.fingerprint}`),
      "GnuPG: the origin's signature inside",
    );
    t.same(JSON.parse(inner.stdout.toString('utf8')), fromGb);

    const dTh = await delivered('vn-customs', fromTh.id);
    const jws = (await checkBroker(dTh)).toString('utf8');
    const thKey = g.gw.registry.snapshot.agency('th-customs')!.keys.find((k) => k.use === 'sig')!;
    const algorithms = signatureAlgsFor(thKey.jwk);
    const { payload } = await compactVerify(jws, await importJWK(thKey.jwk as JWK, algorithms[0]), { algorithms });
    t.same(JSON.parse(new TextDecoder().decode(payload)), fromTh, "the origin's JWS inside verifies");
    await t.rejects(client('vn-customs').open(dTh), { code: 'decrypt-failed' }, 'openDelivery says it is not a JWE');

    // The same delivery over SSE.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 10_000);
    let live: InboxDelivery | undefined;
    for await (const d of client('vn-customs').follow({ after: dGb.cursor - 1 }, abort.signal)) {
      live = d;
      break;
    }
    clearTimeout(timer);
    abort.abort();
    t.equal(live?.openpgp, dGb.openpgp, 'SSE carries the same OpenPGP delivery');

    // Back to JOSE: the next delivery is a JWE again.
    vn.delivery_format = 'jose';
    await g.gw.registry.putAgency(vn);
    await waitFor(
      () => (g.gw.registry.snapshot.agency('vn-customs')?.delivery_format === 'jose' ? true : undefined),
      'registry change',
    );
    const again = aircop('th-customs', 'TH', ['vn-customs']);
    t.equal((await g.post((await g.seal(again, 'th-customs')).jwe)).status, 202);
    t.same((await client('vn-customs').open(await delivered('vn-customs', again.id))).notice, again);
  },
);
