/**
 * The network's PKI: a CA, the gateway's server certificate, one client
 * certificate per agency (the agency id in a SAN URI), and a CRL.
 *
 * Keys are made with node:crypto and written 0600 from the first byte; the
 * certificate work (CSR, signing, revocation, CRL) is done by the openssl CLI
 * with `openssl ca` and a small database under `<dir>/ca/`, so that an operator
 * can run the same tool against a real CA: pass `caCert`/`caKey` (and a
 * passphrase variable) instead of letting it make a dev CA. The paths used are
 * kept in `<dir>/pki.json`, so later `issue`/`revoke` calls use the same CA.
 *
 * Layout under `dir`:
 *   pki.json                 the manifest (CA paths, never a key)
 *   ca.crt                   the CA certificate clients and the gateway trust (a copy for an external CA)
 *   ca/ca.key                the dev CA's key (0600; absent when an external CA is used)
 *   ca/index.txt, ...        the `openssl ca` database: every certificate issued or revoked
 *   crl.pem                  the current CRL, signed by the CA
 *   server/gateway.{crt,key} the gateway's TLS certificate (serverAuth; SAN: localhost, 127.0.0.1, names given)
 *   agencies/<id>.{crt,key}  an agency's client certificate (clientAuth; SAN URI urn:liaison:agency:<id>)
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';

/** The SAN URI prefix that names an agency in a client certificate. */
export const AGENCY_URI_PREFIX = 'urn:liaison:agency:';
export const agencyUri = (agency: string) => `${AGENCY_URI_PREFIX}${agency}`;

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const DNS_NAME =
  /^(?=.{1,253}$)(?:\*\.)?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export class PkiError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkiError';
  }
}

export interface PkiManifest {
  v: 1;
  /** Absolute path of the CA certificate that signs (for an external CA, the operator's file). */
  caCert: string;
  /** Absolute path of the CA key; the dev CA's, or the operator's. */
  caKey: string;
  /** Name of an environment variable holding the CA key's passphrase (openssl -passin env:NAME), if any. */
  caKeyPassEnv?: string;
  external: boolean;
}

export interface PkiPaths {
  dir: string;
  manifest: string;
  /** The CA certificate to trust (clients: --cacert; gateway: tlsCa). */
  caCert: string;
  crl: string;
  serverCert: string;
  serverKey: string;
  agencyCert(agency: string): string;
  agencyKey(agency: string): string;
}

export function pkiPaths(dir: string): PkiPaths {
  const d = resolve(dir);
  return {
    dir: d,
    manifest: join(d, 'pki.json'),
    caCert: join(d, 'ca.crt'),
    crl: join(d, 'crl.pem'),
    serverCert: join(d, 'server', 'gateway.crt'),
    serverKey: join(d, 'server', 'gateway.key'),
    agencyCert: (a) => join(d, 'agencies', `${checkAgency(a)}.crt`),
    agencyKey: (a) => join(d, 'agencies', `${checkAgency(a)}.key`),
  };
}

export interface InitOptions {
  /** Use this CA (an operator's) instead of making a dev CA. Both or neither. */
  caCert?: string;
  caKey?: string;
  /** Environment variable holding the external CA key's passphrase. */
  caKeyPassEnv?: string;
  /** Subject common name of a new dev CA. */
  caName?: string;
  caDays?: number;
  /** Extra names of the gateway (DNS names or IP addresses) besides localhost and 127.0.0.1. */
  serverNames?: readonly string[];
  /** Agencies to issue a client certificate for (skipped when one exists). */
  agencies?: readonly string[];
  days?: number;
  /** The openssl binary (default: openssl on PATH). */
  openssl?: string;
}

export interface InitResult {
  paths: PkiPaths;
  /** What was written this time (relative names), empty when everything existed. */
  created: string[];
}

function checkAgency(a: string): string {
  if (!SLUG.test(a)) throw new PkiError(`agency id must be a lower-case slug (got ${JSON.stringify(a.slice(0, 70))})`);
  return a;
}

function checkServerName(n: string): string {
  if (isIP(n) === 0 && !DNS_NAME.test(n))
    throw new PkiError(`server name must be a DNS name or an IP address (got ${JSON.stringify(n.slice(0, 70))})`);
  return n;
}

function days(n: number | undefined, fallback: number): number {
  const v = n ?? fallback;
  if (!Number.isInteger(v) || v < 1 || v > 36500) throw new PkiError('days must be an integer between 1 and 36500');
  return v;
}

/** An EC P-256 key, written 0600 (PKCS#8 PEM); openssl reads it for the CSR. */
function writeKey(file: string): void {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  rmSync(file, { force: true });
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  chmodSync(file, 0o600);
}

class OpenSsl {
  constructor(private readonly bin: string) {}

  run(args: string[], env: NodeJS.ProcessEnv = process.env): string {
    try {
      return execFileSync(this.bin, args, {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
        timeout: 30_000,
      });
    } catch (e) {
      const err = e as { stderr?: string; message: string; code?: string };
      if (err.code === 'ENOENT')
        throw new PkiError(`the openssl CLI was not found (${this.bin}); install openssl`, { cause: e });
      throw new PkiError(
        `openssl ${args[0]} failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' | ')}`,
        { cause: e },
      );
    }
  }
}

/** The `openssl ca` configuration: the database under <dir>/ca, random serials, SHA-256. */
function caConfig(paths: PkiPaths, m: PkiManifest): string {
  const db = join(paths.dir, 'ca');
  return [
    '[ ca ]',
    'default_ca = liaison_ca',
    '[ liaison_ca ]',
    `database = ${join(db, 'index.txt')}`,
    `new_certs_dir = ${join(db, 'newcerts')}`,
    `certificate = ${m.caCert}`,
    `private_key = ${m.caKey}`,
    'rand_serial = yes',
    `crlnumber = ${join(db, 'crlnumber')}`,
    'default_md = sha256',
    'default_days = 365',
    'default_crl_days = 30',
    'policy = policy_any',
    'unique_subject = no',
    'copy_extensions = none',
    'email_in_dn = no',
    '[ policy_any ]',
    'organizationName = optional',
    'commonName = supplied',
    '[ req ]',
    'distinguished_name = req_dn',
    'prompt = no',
    '[ req_dn ]',
    'CN = unused',
    '[ v3_ca ]',
    'basicConstraints = critical,CA:TRUE,pathlen:0',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    '',
  ].join('\n');
}

function readManifest(paths: PkiPaths): PkiManifest | null {
  if (!existsSync(paths.manifest)) return null;
  const m = JSON.parse(readFileSync(paths.manifest, 'utf8')) as PkiManifest;
  if (m.v !== 1 || typeof m.caCert !== 'string' || typeof m.caKey !== 'string')
    throw new PkiError(`${paths.manifest} is not a Liaison PKI manifest`);
  return m;
}

/** A PKI directory: its paths, its CA and the openssl runner. */
export class Pki {
  readonly paths: PkiPaths;
  readonly manifest: PkiManifest;
  readonly #ssl: OpenSsl;
  readonly #cnf: string;

  private constructor(paths: PkiPaths, manifest: PkiManifest, openssl: string) {
    this.paths = paths;
    this.manifest = manifest;
    this.#ssl = new OpenSsl(openssl);
    this.#cnf = join(paths.dir, 'ca', 'openssl.cnf');
    writeFileSync(this.#cnf, caConfig(paths, manifest));
  }

  /** Open an initialised PKI directory. */
  static open(dir: string, opts: { openssl?: string } = {}): Pki {
    const paths = pkiPaths(dir);
    const m = readManifest(paths);
    if (!m) throw new PkiError(`${paths.dir} holds no PKI (run: liaison certs init --dir ${dir})`);
    return new Pki(paths, m, opts.openssl ?? 'openssl');
  }

  /**
   * Create (or complete) a PKI directory: the CA (a new dev CA, or the one
   * passed), the gateway's certificate, the agencies' certificates and the CRL.
   * What exists is kept, so this is safe to run at every start.
   */
  static init(dir: string, opts: InitOptions = {}): InitResult {
    const paths = pkiPaths(dir);
    const created: string[] = [];
    const openssl = opts.openssl ?? 'openssl';
    if ((opts.caCert === undefined) !== (opts.caKey === undefined))
      throw new PkiError('pass both --ca-cert and --ca-key, or neither');
    if (opts.caKeyPassEnv !== undefined && !ENV_NAME.test(opts.caKeyPassEnv))
      throw new PkiError('the CA key passphrase must be named by an environment variable name');
    for (const sub of ['', 'ca', join('ca', 'newcerts'), 'server', 'agencies'])
      mkdirSync(join(paths.dir, sub), { recursive: true, mode: 0o700 });
    chmodSync(join(paths.dir, 'ca'), 0o700);
    let m = readManifest(paths);
    if (m && opts.caCert !== undefined && resolve(opts.caCert) !== m.caCert)
      throw new PkiError(`${paths.dir} already uses the CA ${m.caCert}`);
    if (!existsSync(join(paths.dir, 'ca', 'index.txt'))) writeFileSync(join(paths.dir, 'ca', 'index.txt'), '');
    if (!existsSync(join(paths.dir, 'ca', 'crlnumber'))) writeFileSync(join(paths.dir, 'ca', 'crlnumber'), '1000\n');
    if (!m) {
      const external = opts.caCert !== undefined;
      m = external
        ? {
            v: 1,
            caCert: resolve(opts.caCert as string),
            caKey: resolve(opts.caKey as string),
            external: true,
            ...(opts.caKeyPassEnv ? { caKeyPassEnv: opts.caKeyPassEnv } : {}),
          }
        : { v: 1, caCert: paths.caCert, caKey: join(paths.dir, 'ca', 'ca.key'), external: false };
      if (external) {
        if (!existsSync(m.caCert) || !existsSync(m.caKey))
          throw new PkiError('the CA certificate or key file does not exist');
        const ca = new X509Certificate(readFileSync(m.caCert));
        if (!ca.ca) throw new PkiError(`${m.caCert} is not a CA certificate (basicConstraints CA:TRUE)`);
        copyFileSync(m.caCert, paths.caCert);
      } else {
        writeKey(m.caKey);
        const pki0 = new Pki(paths, m, openssl);
        pki0.#ssl.run([
          'req',
          '-config',
          pki0.#cnf,
          '-x509',
          '-new',
          '-key',
          m.caKey,
          '-subj',
          `/O=Liaison/CN=${(opts.caName ?? 'Liaison dev network CA').replace(/[/=+\\]/g, ' ')}`,
          '-extensions',
          'v3_ca',
          '-days',
          String(days(opts.caDays, 3650)),
          '-sha256',
          '-out',
          paths.caCert,
        ]);
        created.push('ca.crt', 'ca/ca.key');
      }
      writeFileSync(paths.manifest, JSON.stringify(m, null, 2) + '\n');
    }
    const pki = new Pki(paths, m, openssl);
    if (!existsSync(paths.serverCert)) {
      pki.issueServer(opts.serverNames ?? [], opts.days);
      created.push('server/gateway.crt', 'server/gateway.key');
    }
    for (const a of opts.agencies ?? []) {
      if (existsSync(paths.agencyCert(a))) continue;
      pki.issueAgency(a, opts.days);
      created.push(`agencies/${a}.crt`, `agencies/${a}.key`);
    }
    if (!existsSync(paths.crl) || created.length > 0) {
      pki.writeCrl();
      created.push('crl.pem');
    }
    return { paths, created };
  }

  #passin(): string[] {
    return this.manifest.caKeyPassEnv ? ['-passin', `env:${this.manifest.caKeyPassEnv}`] : [];
  }

  /** Sign a CSR for `key` with the CA and the given extensions (a v3 extension section body). */
  #issue(key: string, cert: string, subject: string, ext: string[], validDays: number): X509Certificate {
    const tmp = join(this.paths.dir, 'ca', `req-${process.pid}-${Date.now()}`);
    try {
      writeFileSync(`${tmp}.ext`, ['[ ext ]', ...ext, ''].join('\n'));
      this.#ssl.run(['req', '-config', this.#cnf, '-new', '-key', key, '-subj', subject, '-out', `${tmp}.csr`]);
      this.#ssl.run([
        'ca',
        '-config',
        this.#cnf,
        '-batch',
        '-notext',
        '-in',
        `${tmp}.csr`,
        '-out',
        cert,
        '-extfile',
        `${tmp}.ext`,
        '-extensions',
        'ext',
        '-days',
        String(validDays),
        ...this.#passin(),
      ]);
    } finally {
      rmSync(`${tmp}.ext`, { force: true });
      rmSync(`${tmp}.csr`, { force: true });
    }
    return new X509Certificate(readFileSync(cert));
  }

  /** (Re)issue the gateway's certificate: SAN localhost, 127.0.0.1, ::1 and `names`. */
  issueServer(names: readonly string[] = [], validDays?: number): X509Certificate {
    const all = [...new Set(['localhost', '127.0.0.1', '::1', ...names.map(checkServerName)])];
    const san = all.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    writeKey(this.paths.serverKey);
    return this.#issue(
      this.paths.serverKey,
      this.paths.serverCert,
      '/O=Liaison/CN=liaison-gateway',
      [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage = serverAuth',
        `subjectAltName = ${san}`,
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid,issuer',
      ],
      days(validDays, 825),
    );
  }

  /** (Re)issue an agency's client certificate; the previous one stays valid until revoked. */
  issueAgency(agency: string, validDays?: number): X509Certificate {
    checkAgency(agency);
    writeKey(this.paths.agencyKey(agency));
    return this.#issue(
      this.paths.agencyKey(agency),
      this.paths.agencyCert(agency),
      `/O=Liaison/CN=${agency}`,
      [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature',
        'extendedKeyUsage = clientAuth',
        `subjectAltName = URI:${agencyUri(agency)}`,
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid,issuer',
      ],
      days(validDays, 365),
    );
  }

  /** Revoke a certificate (a file issued by this CA) and write a new CRL. Returns its serial (upper-case hex). */
  revoke(
    certFile: string,
    reason:
      'unspecified' | 'keyCompromise' | 'affiliationChanged' | 'superseded' | 'cessationOfOperation' = 'unspecified',
  ): string {
    const cert = new X509Certificate(readFileSync(certFile));
    if (!cert.checkIssued(new X509Certificate(readFileSync(this.manifest.caCert))))
      throw new PkiError(`${certFile} was not issued by this CA`);
    this.#ssl.run(['ca', '-config', this.#cnf, '-revoke', certFile, '-crl_reason', reason, ...this.#passin()]);
    this.writeCrl();
    return normalizeSerial(cert.serialNumber);
  }

  /** Write a fresh CRL (valid 30 days) to crl.pem. */
  writeCrl(): void {
    this.#ssl.run(['ca', '-config', this.#cnf, '-gencrl', '-out', this.paths.crl, ...this.#passin()]);
  }
}

/** A certificate serial as compared everywhere: upper-case hex without leading zeros. */
export function normalizeSerial(hex: string): string {
  return hex
    .replace(/[:\s]/g, '')
    .toUpperCase()
    .replace(/^0+(?=.)/, '');
}
