/**
 * HTTPS with mutual TLS, over real sockets on 127.0.0.1: the network CA's
 * certificates (certs/pki.ts, the openssl CLI), a real nats-server, node:https
 * clients with client certificates.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMessage, encrypt, readKey, readPrivateKey } from 'openpgp';
import { makeClientAssertion } from '../broker/agency-client/assertion.js';
import { STREAMS } from '../broker/nats/streams.js';
import { Pki } from '../certs/pki.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';
import { httpsCall, identity } from './helpers/tls-client.js';

const nats = await startTestNats(t);
const dataDir = mkdtempSync(join(tmpdir(), 'liaison-tls-'));
const otherDir = mkdtempSync(join(tmpdir(), 'liaison-tls-other-'));
t.teardown(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(otherDir, { recursive: true, force: true });
});

const agencies = ['vn-customs', 'th-customs', 'kh-police-adp', 'la-customs', 'cn-customs', 'gb-border-force'];
const { paths } = Pki.init(join(dataDir, 'pki'), { agencies });
const pki = Pki.open(paths.dir);
// Another CA, with a certificate for the same agency id: it must never be let in.
Pki.init(otherDir, { agencies: ['vn-customs'], caName: 'Some other CA' });
const foreign = Pki.open(otherDir);
// Revoked on the CRL before the gateway starts.
pki.revoke(pki.paths.agencyCert('kh-police-adp'), 'keyCompromise');

const g = await startTestGateway(t, nats.url, { tls: true, mtls: 'required' }, { dataDir });
const base = await g.gw.app.listen({ host: '127.0.0.1', port: 0 });
const ca = readFileSync(pki.paths.caCert);
const brokerId = g.config.brokerId;

const notice = async (agency: string, country: string) => {
  const n = sampleNotice('seizure-report', { origin: { country, agency }, addressees: ['*'] });
  return (await g.seal(n, agency)).jwe;
};
const postAs = async (certAgency: string, jwe: string, from: Pki = pki) =>
  httpsCall(base, {
    ca,
    id: identity(from, certAgency),
    method: 'POST',
    path: '/v1/notices',
    headers: { 'content-type': 'application/jose' },
    body: jwe,
  });
const readAs = async (certAgency: string | null, tokenAgency: string) =>
  httpsCall(base, {
    ca,
    ...(certAgency ? { id: identity(pki, certAgency) } : {}),
    path: '/v1/inbox?limit=1',
    headers: {
      authorization: `Bearer ${await makeClientAssertion(tokenAgency, g.creds(tokenAgency).signing, brokerId)}`,
    },
  });
const noticeCount = async () => (await g.gw.bus.jsm.streams.info(STREAMS.notices)).state.messages;
const requestLines = () => g.logLines.filter((l) => l.includes('"msg":"request"')).length;

t.match(base, /^https:\/\/127\.0\.0\.1:\d+$/, 'the gateway serves HTTPS');

t.test('the right certificate: notice accepted, token read served', async (t) => {
  const res = await postAs('vn-customs', await notice('vn-customs', 'VN'));
  t.equal(res.status, 202, `answered 202 (${res.json.code ?? 'no problem'})`);
  t.type(res.json.receipt, 'string');
  const read = await readAs('th-customs', 'th-customs');
  t.equal(read.status, 200, `answered 200 (${read.json.code ?? 'no problem'})`);
  const keys = await httpsCall(base, { ca, id: identity(pki, 'la-customs'), path: '/v1/keys' });
  t.equal(keys.status, 200);
  t.equal(keys.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', 'HSTS under TLS');
});

t.test('no client certificate: the handshake is refused, no HTTP is served', async (t) => {
  const before = requestLines();
  const err = await httpsCall(base, { ca, path: '/v1/keys' }).then(
    () => null,
    (e: NodeJS.ErrnoException) => e,
  );
  t.ok(err, 'the connection fails');
  t.match(String(err?.code ?? err?.message), /CERTIFICATE_REQUIRED|ECONNRESET|EPIPE|socket hang up/i);
  t.equal(requestLines(), before, 'the gateway saw no request');
});

t.test('a certificate from another CA: the connection is refused, no HTTP is served', async (t) => {
  const before = requestLines();
  const count = await noticeCount();
  const err = await postAs('vn-customs', await notice('vn-customs', 'VN'), foreign).then(
    () => null,
    (e: NodeJS.ErrnoException) => e,
  );
  t.ok(err, 'the connection fails');
  t.match(String(err?.code ?? err?.message), /UNKNOWN_CA|ECONNRESET|EPIPE|socket hang up|alert/i);
  t.equal(requestLines(), before, 'the gateway saw no request');
  t.equal(await noticeCount(), count, 'nothing stored');
});

t.test("agency A's certificate with agency B's notice or token: client-cert-mismatch, nothing stored", async (t) => {
  const count = await noticeCount();
  const res = await postAs('vn-customs', await notice('th-customs', 'TH'));
  t.equal(res.status, 403);
  t.equal(res.json.code, 'client-cert-mismatch');
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
  t.equal(await noticeCount(), count, 'the notice was refused before it was stored');
  const read = await readAs('vn-customs', 'th-customs');
  t.equal(read.status, 403);
  t.equal(read.json.code, 'client-cert-mismatch');
  // The same notice with the signer's own certificate goes through.
  const ok = await postAs('th-customs', await notice('th-customs', 'TH'));
  t.equal(ok.status, 202, `answered 202 (${ok.json.code ?? 'no problem'})`);
  const logs = g.logLines.filter((l) => l.includes('client-cert-mismatch')).join('\n');
  t.notMatch(logs, /Bearer|eyJ/, 'no token or envelope in the log');
});

t.test(
  "an OpenPGP notice signed by agency B under agency A's certificate: client-cert-mismatch, nothing stored",
  async (t) => {
    const { openpgp: brokerPgp } = (
      await httpsCall(base, { ca, id: identity(pki, 'gb-border-force'), path: '/v1/keys' })
    ).json as { openpgp: string };
    const gb = g.creds('gb-border-force').openpgp!;
    const notice = sampleNotice('seizure-report', {
      operation: 'aircop',
      origin: { country: 'GB', agency: 'gb-border-force' },
      addressees: ['th-customs'],
      tlp: 'AMBER',
    });
    const seal = async (n: unknown) =>
      encrypt({
        message: await createMessage({ binary: new TextEncoder().encode(JSON.stringify(n)), format: 'binary' }),
        encryptionKeys: await readKey({ armoredKey: brokerPgp }),
        signingKeys: await readPrivateKey({ armoredKey: gb.private_armored }),
        format: 'armored',
      });
    const post = (certAgency: string, body: string) =>
      httpsCall(base, {
        ca,
        id: identity(pki, certAgency),
        method: 'POST',
        path: '/v1/notices',
        headers: { 'content-type': 'application/pgp-encrypted' },
        body,
      });
    const count = await noticeCount();
    const res = await post('vn-customs', await seal(notice));
    t.equal(res.status, 403);
    t.equal(res.json.code, 'client-cert-mismatch');
    t.equal(await noticeCount(), count, 'refused before it was stored');
    const ok = await post('gb-border-force', await seal(notice));
    t.equal(ok.status, 202, `with the signer's own certificate: 202 (${ok.json.code ?? 'no problem'})`);
  },
);

t.test('a certificate revoked on the CRL: client-cert-revoked, also when revoked while the gateway runs', async (t) => {
  const res = await postAs('kh-police-adp', await notice('kh-police-adp', 'KH'));
  t.equal(res.status, 403);
  t.equal(res.json.code, 'client-cert-revoked');

  t.equal(
    (await httpsCall(base, { ca, id: identity(pki, 'la-customs'), path: '/v1/keys' })).status,
    200,
    'la-customs is let in',
  );
  pki.revoke(pki.paths.agencyCert('la-customs'), 'affiliationChanged');
  let last = 0;
  const deadline = Date.now() + 8000;
  for (let i = 0; i < 80 && Date.now() < deadline; i++) {
    const r = await httpsCall(base, { ca, id: identity(pki, 'la-customs'), path: '/v1/keys' });
    last = r.status;
    if (r.status === 403) {
      t.equal(r.json.code, 'client-cert-revoked');
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(last, 403, 'the new CRL is picked up without a restart');
});

t.test(
  'a certificate revoked in the registry: client-cert-revoked as soon as the registry changes, no restart',
  async (t) => {
    const ok = await postAs('cn-customs', await notice('cn-customs', 'CN'));
    t.equal(ok.status, 202, `answered 202 (${ok.json.code ?? 'no problem'})`);
    const serial = new (await import('node:crypto')).X509Certificate(readFileSync(pki.paths.agencyCert('cn-customs')))
      .serialNumber;
    const record = g.gw.registry.snapshot.agency('cn-customs');
    if (!record) throw new Error('no cn-customs');
    await g.gw.registry.putAgency({
      ...record,
      certificates: [{ serial: '00' + serial.toLowerCase(), status: 'revoked', revoked_at: new Date().toISOString() }],
    });
    let res = { status: 0, json: {} as Record<string, any> };
    const deadline = Date.now() + 5000;
    for (let i = 0; i < 50 && Date.now() < deadline; i++) {
      res = await postAs('cn-customs', await notice('cn-customs', 'CN'));
      if (res.status === 403) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(res.status, 403);
    t.equal(res.json.code, 'client-cert-revoked');
    // A new certificate for the agency (a new serial) is accepted.
    pki.issueAgency('cn-customs');
    const again = await postAs('cn-customs', await notice('cn-customs', 'CN'));
    t.equal(again.status, 202, `answered 202 (${again.json.code ?? 'no problem'})`);
  },
);

t.test("mtls 'optional': no certificate is fine, a bad or foreign one is not", async (t) => {
  const g2 = await startTestGateway(
    t,
    nats.url,
    { tls: true, mtls: 'optional', router: false, checkpointer: false },
    { dataDir },
  );
  const base2 = await g2.gw.app.listen({ host: '127.0.0.1', port: 0 });
  const n = sampleNotice('seizure-report', {
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['th-customs'],
  });
  const jwe = (await g2.seal(n, 'vn-customs')).jwe;
  const anon = await httpsCall(base2, {
    ca,
    method: 'POST',
    path: '/v1/notices',
    headers: { 'content-type': 'application/jose' },
    body: jwe,
  });
  t.equal(anon.status, 202, 'without a certificate the signature is the proof of origin');
  const mismatch = await httpsCall(base2, {
    ca,
    id: identity(pki, 'th-customs'),
    method: 'POST',
    path: '/v1/notices',
    headers: { 'content-type': 'application/jose' },
    body: (await g2.seal({ ...n, id: crypto.randomUUID() }, 'vn-customs')).jwe,
  });
  t.equal(mismatch.status, 403);
  t.equal(mismatch.json.code, 'client-cert-mismatch');
  const revoked = await httpsCall(base2, { ca, id: identity(pki, 'kh-police-adp'), path: '/v1/keys' });
  t.equal(revoked.json.code, 'client-cert-revoked');
  const err = await httpsCall(base2, { ca, id: identity(foreign, 'vn-customs'), path: '/v1/keys' }).then(
    () => null,
    (e: Error) => e,
  );
  t.ok(err, 'a certificate from another CA gets no HTTP answer');
});
