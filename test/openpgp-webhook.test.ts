import t, { type Test } from 'tap';
import { compactVerify, importJWK, type JWK } from 'jose';
import { verifyWebhook, WEBHOOK_MEDIA_TYPE } from '../adapters/webhook/index.js';
import { signatureAlgsFor } from '../broker/keys/jwk.js';
import { currentOpenPgpRecipient } from '../adapters/openpgp/recipients.js';
import type { Agency } from '../broker/registry/model.js';
import { startGpg } from './helpers/gpg.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { waitFor } from './helpers/wait.js';
import { webhookConsumerReady, webhookReceiver } from './helpers/webhook-receiver.js';

/**
 * Webhook delivery to an agency whose registry entry has `delivery_format: 'openpgp'`:
 * the broker-signed webhook body carries an OpenPGP message (not a JWE) that GnuPG
 * (Debian gpg, temporary GNUPGHOME) decrypts with the agency's key, checking the
 * broker's OpenPGP signature; inside is the origin's signed notice as stored
 * (a compact JWS from a JOSE origin, an OpenPGP signed message from an OpenPGP origin).
 * gb-border-force receives with its demo OpenPGP key (made by openpgp.js), imported into GnuPG.
 */
t.setTimeout(180_000);
const PGP = 'application/pgp-encrypted';
const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, {
  leaseTtlSeconds: 3,
  routerAckWaitSeconds: 2,
  webhookBackoffBaseMs: 50,
  webhookBackoffMaxMs: 200,
  webhookMaxAttempts: 3,
  webhookTimeoutMs: 2000,
});
const gpg = startGpg(t);
const published = (await g.gw.app.inject({ method: 'GET', url: '/v1/keys' })).json<{
  openpgp: string;
  keys: JWK[];
  broker: string;
}>();
await gpg.importKey(published.openpgp);
const brokerFpr = g.gw.keyring.openpgp!.fingerprint;
const gb = g.creds('gb-border-force').openpgp!;
const fr = g.creds('fr-douane').openpgp!;
await gpg.importKey(gb.private_armored); // the recipient's secret key: GnuPG decrypts with its cv25519 subkey
await gpg.importKey(fr.private_armored); // an OpenPGP origin: fr-douane signs in GnuPG

/** The agency's webhook receiver on loopback: records every POST, answers 204. */
const { got, url: hookUrl } = await webhookReceiver(t, undefined, '/liaison');

// gb-border-force: OpenPGP deliveries, by webhook.
const record = structuredClone(g.gw.registry.snapshot.agency('gb-border-force')) as Agency;
// No top-level assertion before the subtests: tap may end the root test at it and tear the gateway down.
if (!record.openpgp_keys?.some((k) => k.kid === gb.fingerprint))
  throw new Error('the demo network registers no OpenPGP certificate for gb-border-force');
await g.gw.registry.putAgency({ ...record, delivery_format: 'openpgp', webhook: { url: hookUrl } });
await waitFor(() => {
  const a = g.gw.registry.snapshot.agency('gb-border-force');
  return a?.delivery_format === 'openpgp' && a.webhook?.url === hookUrl ? true : undefined;
}, 'the registry change');
await webhookConsumerReady(g.gw.bus, 'gb-border-force');

/** The webhook POST for one notice: broker-signed claims for gb-border-force carrying an armored OpenPGP message. */
async function webhookFor(t: Test, noticeId: string): Promise<string> {
  const hit = await waitFor(
    () => got.find((r) => r.headers['liaison-notice-id'] === noticeId),
    `the webhook for ${noticeId}`,
    20_000,
  );
  t.equal(hit.headers['content-type'], WEBHOOK_MEDIA_TYPE, 'the body is the broker-signed JWS, as for JOSE agencies');
  t.equal(hit.headers['idempotency-key'], `${noticeId}:gb-border-force`, 'idempotency key: notice and agency');
  const claims = await verifyWebhook(hit.body, published, 'gb-border-force');
  t.equal(claims.notice_id, noticeId, "the broker's webhook signature verifies, for this notice and agency");
  t.equal(claims.jwe, undefined, 'no JWE');
  t.match(claims.openpgp, /^-----BEGIN PGP MESSAGE-----/, 'an armored OpenPGP message');
  return claims.openpgp!;
}

/** GnuPG decrypts the delivery and checks the broker's OpenPGP signature; returns the plaintext (the origin's signed notice). */
async function gnupgOpens(t: Test, message: string): Promise<Buffer> {
  const out = await gpg.run(['--status-fd', '2', '--decrypt'], { input: message });
  t.match(out.stderr, /DECRYPTION_OKAY/, 'GnuPG decrypts it');
  t.match(out.stderr, /\[GNUPG:\] GOODSIG /, 'a good signature');
  t.match(out.stderr, new RegExp(`VALIDSIG [0-9A-F]+ .* ${brokerFpr}`), "made by the broker's OpenPGP key");
  return out.stdout;
}

t.test(
  'a JOSE-origin notice reaches the OpenPGP agency by webhook; GnuPG decrypts it and verifies the broker',
  { timeout: 60_000 },
  async (t) => {
    const notice = sampleNotice('seizure-report', {
      operation: 'aircop',
      origin: { country: 'TH', agency: 'th-customs' },
      addressees: ['gb-border-force'],
      tlp: 'AMBER',
    });
    const res = await g.post((await g.seal(notice, 'th-customs')).jwe);
    t.equal(res.status, 202, res.status === 202 ? 'accepted' : JSON.stringify(res.json));
    const jws = (await gnupgOpens(t, await webhookFor(t, notice.id))).toString('utf8');
    const thKey = g.gw.registry.snapshot.agency('th-customs')!.keys.find((k) => k.use === 'sig')!;
    const algorithms = signatureAlgsFor(thKey.jwk);
    const { payload } = await compactVerify(jws, await importJWK(thKey.jwk as JWK, algorithms[0]), { algorithms });
    t.same(JSON.parse(new TextDecoder().decode(payload)), notice, "inside: th-customs' JWS of the notice");
  },
);

t.test(
  'an OpenPGP-origin notice (signed and encrypted by GnuPG) reaches it the same way; GnuPG checks the broker, then the origin',
  { timeout: 60_000 },
  async (t) => {
    const notice = sampleNotice('document-fraud-alert', { addressees: ['gb-border-force'] });
    const sealed = await gpg.signEncrypt(JSON.stringify(notice), [fr.fingerprint], [brokerFpr]);
    const res = await g.post(sealed, PGP);
    t.equal(res.status, 202, res.status === 202 ? 'accepted' : JSON.stringify(res.json));
    const signed = await gnupgOpens(t, await webhookFor(t, notice.id));
    const inner = await gpg.run(['--status-fd', '2', '--decrypt'], { input: signed });
    t.match(
      inner.stderr,
      new RegExp(`VALIDSIG [0-9A-F]+ .* ${fr.fingerprint}`),
      "inside: fr-douane's signature, checked by GnuPG",
    );
    t.same(JSON.parse(inner.stdout.toString('utf8')), notice, 'the notice as sent');
    t.equal(
      got.filter((r) => r.headers['liaison-notice-id'] === notice.id).length,
      1,
      'one POST (accepted at the first try)',
    );
  },
);

t.test(
  "the router's recipient certificate is parsed once per (kid, certificate); the time checks still run on every call",
  async (t) => {
    const a = g.gw.registry.snapshot.agency('gb-border-force')!;
    const first = await currentOpenPgpRecipient(a, new Date());
    const again = await currentOpenPgpRecipient(structuredClone(a), new Date());
    t.equal(first?.kid, gb.fingerprint);
    t.equal(again?.key, first?.key, 'the same parsed certificate (cached by kid and armored text)');
    const expired = {
      ...a,
      openpgp_keys: a.openpgp_keys!.map((k) => ({ ...k, not_after: new Date(Date.now() - 1000).toISOString() })),
    };
    t.equal(
      await currentOpenPgpRecipient(expired, new Date()),
      undefined,
      'a record out of its window is not used, cached or not',
    );
    t.equal(
      await currentOpenPgpRecipient(a, new Date(Date.now() - 86400_000)),
      undefined,
      'nor a certificate at a time before it was made (openpgp.js checks it against `at`)',
    );
    const wrongKid = { ...a, openpgp_keys: a.openpgp_keys!.map((k) => ({ ...k, kid: 'A'.repeat(40) })) };
    t.equal(
      await currentOpenPgpRecipient(wrongKid, new Date()),
      undefined,
      'the same certificate under another kid is refused',
    );
  },
);
