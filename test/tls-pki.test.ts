/** certs/pki.ts (the openssl CLI) and the CRL checks (broker/http/tls-crl.ts), without a gateway. */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeSerial, Pki, PkiError } from '../certs/pki.js';
import { certificateAgency } from '../broker/http/tls.js';
import { caCertificates, checkCrl, CrlError, parseCrl } from '../broker/http/tls-crl.js';
import { rejectsWith, throwsWith } from './helpers/assert-error.js';

const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};
const mode = (f: string) => statSync(f).mode & 0o777;
const cert = (f: string) => new X509Certificate(readFileSync(f));
const cas = (f: string) => caCertificates(readFileSync(f, 'utf8'));

t.test('a dev PKI: CA, gateway and agency certificates, CRL; keys 0600; safe to run again', async (t) => {
  const dir = tmp('liaison-pki-');
  const { paths, created } = Pki.init(dir, {
    agencies: ['vn-customs', 'fr-douane'],
    serverNames: ['gateway.liaison.example', '10.1.2.3'],
  });
  t.ok(created.includes('ca.crt') && created.includes('agencies/fr-douane.crt') && created.includes('crl.pem'));
  for (const key of [
    join(dir, 'ca', 'ca.key'),
    paths.serverKey,
    paths.agencyKey('vn-customs'),
    paths.agencyKey('fr-douane'),
  ])
    t.equal(mode(key), 0o600, `${key} is 0600`);
  t.equal(mode(join(dir, 'ca')), 0o700, 'the CA directory is private');
  const ca = cert(paths.caCert);
  t.ok(ca.ca, 'the CA is a CA');

  const server = cert(paths.serverCert);
  t.ok(server.checkIssued(ca) && server.verify(ca.publicKey), 'the gateway certificate is issued by the CA');
  for (const n of ['DNS:localhost', 'IP Address:127.0.0.1', 'DNS:gateway.liaison.example', 'IP Address:10.1.2.3'])
    t.ok(server.subjectAltName?.includes(n), `SAN has ${n}`);
  t.equal(server.checkHost('localhost'), 'localhost');
  t.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(certificateAgency(server), null, 'the server certificate names no agency');

  const agency = cert(paths.agencyCert('vn-customs'));
  t.equal(agency.subjectAltName, 'URI:urn:liaison:agency:vn-customs');
  t.equal(certificateAgency(agency), 'vn-customs');
  t.ok(agency.verify(ca.publicKey));
  const exts = execFileSync(
    'openssl',
    ['x509', '-in', paths.agencyCert('vn-customs'), '-noout', '-ext', 'extendedKeyUsage,basicConstraints'],
    { encoding: 'utf8' },
  );
  t.match(exts, /TLS Web Client Authentication/, 'clientAuth only');
  t.notMatch(exts, /Server Authentication/);
  t.match(exts, /CA:FALSE/);

  const again = Pki.init(dir, { agencies: ['vn-customs', 'fr-douane'] });
  t.same(again.created, [], 'nothing is re-made');
  t.equal(cert(paths.agencyCert('vn-customs')).serialNumber, agency.serialNumber);

  t.throws(() => Pki.init(dir, { agencies: ['Bad Agency'] }), PkiError);
  t.throws(() => Pki.open(dir).issueServer(['bad name;rm -rf']), PkiError);
  t.throws(() => Pki.open(tmp('liaison-empty-')), /holds no PKI/);
});

t.test('revocation and the CRL reader: the serial is listed, the signature is the CA', async (t) => {
  const dir = tmp('liaison-crl-');
  const { paths } = Pki.init(dir, { agencies: ['th-customs', 'la-customs'] });
  const pki = Pki.open(dir);
  const before = await checkCrl(readFileSync(paths.crl), cas(paths.caCert));
  t.equal(before.revoked.size, 0, 'signed by the CA, nothing revoked');
  const serial = pki.revoke(paths.agencyCert('la-customs'), 'keyCompromise');
  t.equal(serial, normalizeSerial(cert(paths.agencyCert('la-customs')).serialNumber));
  const crlBytes = readFileSync(paths.crl);
  const crl = await checkCrl(crlBytes, cas(paths.caCert));
  t.same([...crl.revoked], [serial], 'signed by the CA, the serial listed');
  t.ok(crl.nextUpdate && crl.nextUpdate > crl.thisUpdate);
  // openssl agrees.
  t.throws(() =>
    execFileSync(
      'openssl',
      ['verify', '-CAfile', paths.caCert, '-crl_check', '-CRLfile', paths.crl, paths.agencyCert('la-customs')],
      { stdio: 'pipe' },
    ),
  );
  execFileSync(
    'openssl',
    ['verify', '-CAfile', paths.caCert, '-crl_check', '-CRLfile', paths.crl, paths.agencyCert('th-customs')],
    { stdio: 'pipe' },
  );
  // DER works as well as PEM.
  const der = execFileSync('openssl', ['crl', '-in', paths.crl, '-outform', 'DER']);
  t.same([...(await checkCrl(der, cas(paths.caCert))).revoked], [serial]);

  const other = tmp('liaison-crl-other-');
  Pki.init(other);
  await rejectsWith(t, checkCrl(crlBytes, cas(join(other, 'ca.crt'))), CrlError, 'crl-invalid', {
    message: /signature does not verify/,
    what: 'not signed by another CA (of the same name)',
  });
  const flipped = Buffer.from(der);
  flipped[flipped.length - 5] = (flipped[flipped.length - 5] as number) ^ 1;
  await rejectsWith(t, checkCrl(flipped, cas(paths.caCert)), CrlError, 'crl-invalid', {
    message: /signature does not verify/,
    what: 'modified-signature fails',
  });
  const tbsFlip = Buffer.from(der);
  const at = tbsFlip.indexOf(Buffer.from(serial.length % 2 ? '0' + serial : serial, 'hex'));
  t.ok(at > 0);
  tbsFlip[at + 1] = (tbsFlip[at + 1] as number) ^ 1;
  await rejectsWith(t, checkCrl(tbsFlip, cas(paths.caCert)), CrlError, 'crl-invalid', {
    message: /signature does not verify/,
    what: 'modified-serial fails',
  });
  throwsWith(t, () => parseCrl(der.subarray(0, der.length - 10)), CrlError, 'crl-invalid', { what: 'truncated' });
  throwsWith(t, () => parseCrl(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])), CrlError, 'crl-invalid', {
    what: 'length past the end',
  });
  throwsWith(t, () => parseCrl('not a crl'), CrlError, 'crl-invalid', { message: /no PEM X509 CRL block/ });
  t.throws(() => pki.revoke(join(other, 'server', 'gateway.crt')), /not issued by this CA/);
});

t.test("an operator's CA: the same tool with a CA cert and a passphrase-protected key", async (t) => {
  const ext = tmp('liaison-realca-');
  const caKey = join(ext, 'ca.key');
  const caCert = join(ext, 'ca.crt');
  const env = { ...process.env, LIAISON_TEST_CA_PASS: 'correct horse battery staple' };
  execFileSync(
    'openssl',
    [
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-aes-256-cbc',
      '-pass',
      'env:LIAISON_TEST_CA_PASS',
      '-out',
      caKey,
    ],
    { env, stdio: 'pipe' },
  );
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-new',
      '-key',
      caKey,
      '-passin',
      'env:LIAISON_TEST_CA_PASS',
      '-subj',
      '/O=Member Network/CN=Network Root CA',
      '-days',
      '30',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      caCert,
    ],
    { env, stdio: 'pipe' },
  );
  const dir = tmp('liaison-pki-ext-');
  process.env.LIAISON_TEST_CA_PASS = env.LIAISON_TEST_CA_PASS;
  t.teardown(() => void delete process.env.LIAISON_TEST_CA_PASS);
  const { paths } = Pki.init(dir, {
    caCert,
    caKey,
    caKeyPassEnv: 'LIAISON_TEST_CA_PASS',
    agencies: ['gb-border-force'],
  });
  t.notOk(existsSync(join(dir, 'ca', 'ca.key')), 'no CA key is made or copied');
  t.notMatch(readFileSync(paths.manifest, 'utf8'), /PRIVATE|horse/, 'the manifest holds paths only');
  const ca = cert(caCert);
  t.ok(cert(paths.agencyCert('gb-border-force')).checkIssued(ca));
  t.ok(cert(paths.serverCert).verify(ca.publicKey));
  const serial = Pki.open(dir).revoke(paths.agencyCert('gb-border-force'));
  const crl = await checkCrl(readFileSync(paths.crl), cas(caCert));
  t.ok(crl.revoked.has(serial), 'an RSA CA signs the CRL (sha256WithRSAEncryption)');
  t.throws(() => Pki.init(tmp('liaison-pki-bad-'), { caCert }), /both --ca-cert and --ca-key/);
  t.throws(() => Pki.init(tmp('liaison-pki-bad-'), { caCert: paths.serverCert, caKey }), /not a CA certificate/);
});

t.test('liaison certs init / issue / revoke / crl', async (t) => {
  const { run } = await import('../broker/cli/liaison.js');
  const dir = tmp('liaison-certs-cli-');
  const io = { out: '', err: '' };
  const sink = { out: (s: string) => void (io.out += s), err: (s: string) => void (io.err += s) };
  t.equal(
    await run(['certs', 'init', '--dir', dir, '--agency', 'vn-customs', '--server-name', 'hub.example'], sink),
    0,
    io.err,
  );
  t.match(io.out, /wrote .*agencies\/vn-customs\.crt/);
  t.equal(await run(['certs', 'issue', '--dir', dir, '--agency', 'th-customs'], sink), 0, io.err);
  t.ok(existsSync(join(dir, 'agencies', 'th-customs.key')));
  t.equal(
    await run(['certs', 'revoke', '--dir', dir, '--agency', 'th-customs', '--reason', 'superseded'], sink),
    0,
    io.err,
  );
  t.match(io.out, /revoked serial [0-9A-F]+ of th-customs/);
  t.equal((await checkCrl(readFileSync(join(dir, 'crl.pem')), cas(join(dir, 'ca.crt')))).revoked.size, 1);
  t.equal(await run(['certs', 'crl', '--dir', dir], sink), 0, io.err);
  t.equal(
    await run(['certs', 'revoke', '--dir', dir, '--agency', 'th-customs', '--reason', 'because'], sink),
    2,
    'a usage error',
  );
  t.match(io.err, /--reason must be one of/);
  t.equal(await run(['certs', 'issue', '--dir', dir], sink), 2, 'a usage error');
});
