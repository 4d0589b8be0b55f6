/**
 * The CRL policy (broker/http/tls-crl.ts, CrlSource in tls.ts): a CRL with a
 * critical extension the gateway does not process, or whose issuer is not the
 * network CA, is refused at start-up and on reload (the last good CRL stays in
 * force). The CRLs are made by the openssl CLI with the network CA's own key.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../broker/core/logger.js';
import { caCertificates, checkCrl, CrlError } from '../broker/http/tls-crl.js';
import { CrlSource } from '../broker/http/tls.js';
import { normalizeSerial, Pki } from '../certs/pki.js';
import { startTestGateway } from './helpers/gateway.js';
import { rejectsWith } from './helpers/assert-error.js';

const dir = mkdtempSync(join(tmpdir(), 'liaison-crl-policy-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const { paths } = Pki.init(join(dir, 'pki'), { agencies: ['vn-customs', 'th-customs', 'la-customs'] });
const pki = Pki.open(paths.dir);
const caPem = readFileSync(paths.caCert, 'utf8');
const cas = caCertificates(caPem);
const cnf = join(paths.dir, 'ca', 'openssl.cnf');
const caKey = join(paths.dir, 'ca', 'ca.key');
const serialOf = (agency: string) =>
  normalizeSerial(new X509Certificate(readFileSync(pki.paths.agencyCert(agency))).serialNumber);
const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

/** A CRL signed by the network CA (its current revocations), with `extensions` lines as its CRL extensions. */
function crlWith(name: string, extensions: string[]): string {
  const conf = join(dir, `${name}.cnf`);
  writeFileSync(conf, `${readFileSync(cnf, 'utf8')}\n[ crl_ext_${name} ]\n${extensions.join('\n')}\n`);
  const out = join(dir, `${name}.pem`);
  openssl(['ca', '-config', conf, '-gencrl', '-crlexts', `crl_ext_${name}`, '-out', out]);
  return out;
}

/** A CRL signed with the network CA's key under another issuer name. */
function crlFromImpostor(): string {
  const impostor = join(dir, 'impostor.crt');
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    '/O=Elsewhere/CN=Not the network CA',
    '-days',
    '30',
    '-out',
    impostor,
  ]);
  const out = join(dir, 'impostor-crl.pem');
  openssl(['ca', '-config', cnf, '-gencrl', '-cert', impostor, '-keyfile', caKey, '-out', out]);
  return out;
}

const UNKNOWN = '1.3.6.1.4.1.55555.1';

t.test(
  'the CRL checks: known and non-critical extensions pass; an unknown critical one or a foreign issuer is refused',
  async (t) => {
    const plain = await checkCrl(readFileSync(paths.crl), cas);
    t.equal(plain.revoked.size, 0, "the PKI's own CRL passes");
    const aki = await checkCrl(
      readFileSync(crlWith('aki', ['authorityKeyIdentifier = keyid:always', `${UNKNOWN} = ASN1:NULL`])),
      cas,
    );
    t.ok(aki, 'an authority key identifier and an unknown non-critical extension pass');

    const critical = crlWith('critical', ['authorityKeyIdentifier = keyid:always', `${UNKNOWN} = critical,ASN1:NULL`]);
    t.match(
      execFileSync('openssl', ['crl', '-in', critical, '-noout', '-text'], { encoding: 'utf8' }),
      /critical/,
      'openssl made it with a critical extension',
    );
    await t.rejects(checkCrl(readFileSync(critical), cas), {
      name: 'CrlError',
      message: `it has a critical extension this gateway does not process (${UNKNOWN})`,
    });

    const partitioned = crlWith('idp', [
      'issuingDistributionPoint = critical, @idp',
      '[ idp ]',
      'fullname = URI:http://crl.example/part1.crl',
      'onlysomereasons = keyCompromise',
    ]);
    await rejectsWith(t, checkCrl(readFileSync(partitioned), cas), CrlError, 'crl-invalid', {
      message: /critical extension this gateway does not process \(2\.5\.29\.28\)/,
      what: 'a partitioned CRL (issuing distribution point) is not the full list',
    });

    const foreign = crlFromImpostor();
    await rejectsWith(t, checkCrl(readFileSync(foreign), cas), CrlError, 'crl-invalid', {
      message: /its issuer \(O=Elsewhere, CN=Not the network CA\) is not the network CA/,
    });
  },
);

t.test('start-up: a gateway given such a CRL does not start, and says why', async (t) => {
  for (const [what, file, why] of [
    [
      'an unknown critical extension',
      crlWith('critical-start', [`${UNKNOWN} = critical,ASN1:NULL`]),
      /critical extension/,
    ],
    ['a foreign issuer', crlFromImpostor(), /is not the network CA/],
  ] as const) {
    await t.rejects(CrlSource.open(file, caPem, createLogger('silent')), why, `CrlSource: ${what}`);
    const dataDir = mkdtempSync(join(tmpdir(), 'liaison-crl-start-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    // The gateway reads TLS material before it connects anywhere: no NATS is needed to see it refuse.
    await t.rejects(
      startTestGateway(
        t,
        'nats://127.0.0.1:1',
        {
          tls: true,
          mtls: 'required',
          tlsCa: paths.caCert,
          tlsCert: paths.serverCert,
          tlsKey: paths.serverKey,
          tlsCrl: file,
        },
        { dataDir },
      ),
      new RegExp(`TLS CRL file ${file.replace(/[.]/g, '\\.')}: .*${why.source}`),
      `the gateway: ${what}`,
    );
  }
});

t.test('reload: a new CRL that is refused leaves the last good one in force, and is logged once', async (t) => {
  const live = join(dir, 'live-crl.pem');
  copyFileSync(paths.crl, live);
  const lines: string[] = [];
  const logger = createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  const source = await CrlSource.open(live, caPem, logger, 0);
  const th = serialOf('th-customs');
  const la = serialOf('la-customs');
  t.equal(await source.isRevoked(th), false);

  // The CA revokes th-customs: the new CRL is taken up.
  pki.revoke(pki.paths.agencyCert('th-customs'), 'keyCompromise');
  const swap = (from: string) => {
    copyFileSync(from, `${live}.new`);
    renameSync(`${live}.new`, live);
  };
  swap(paths.crl);
  t.equal(await source.isRevoked(th), true, 'a good new CRL is used');

  // Then la-customs, but on CRLs that must not be used: th-customs stays revoked, la-customs is not taken from them.
  pki.revoke(pki.paths.agencyCert('la-customs'), 'keyCompromise');
  for (const [what, file] of [
    ['an unknown critical extension', crlWith('critical-reload', [`${UNKNOWN} = critical,ASN1:NULL`])],
    ['a foreign issuer', crlFromImpostor()],
  ] as const) {
    t.match(
      execFileSync('openssl', ['crl', '-in', file, '-noout', '-text'], { encoding: 'utf8' }),
      /Revoked Certificates:/,
      `${what}: the refused CRL lists revocations`,
    );
    const before = lines.filter((l) => l.includes('"crl-invalid"')).length;
    swap(file);
    t.equal(await source.isRevoked(la), false, `${what}: not used`);
    t.equal(await source.isRevoked(th), true, `${what}: the last good CRL stays in force`);
    const logged = lines.filter((l) => l.includes('"crl-invalid"'));
    t.equal(logged.length, before + 1, `${what}: logged once, not at every look`);
  }
  swap(paths.crl);
  t.equal(await source.isRevoked(la), true, 'a good CRL again: taken up');

  rmSync(live);
  t.equal(await source.isRevoked(la), true, 'the file gone: the last good CRL stays in force');
  t.equal(await source.isRevoked(th), true);
  t.equal(lines.filter((l) => l.includes('"crl-missing"')).length, 1, 'logged once');
});
