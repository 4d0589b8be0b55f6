/**
 * HTTPS and mutual TLS for the gateway.
 *
 * - The TLS layer trusts only the network's CA (`tlsCa`). With mtls 'required'
 *   Node's `requestCert` + `rejectUnauthorized` refuse, during the handshake, a
 *   client without a certificate or with one from another CA. With 'optional'
 *   a client may come without a certificate; one that presents a certificate
 *   that does not chain to the CA is disconnected before any HTTP is read.
 * - Per request (this plugin): the certificate's agency is its SAN URI
 *   `urn:liaison:agency:<id>`; it must be a member, and the certificate must not
 *   be revoked, by the CRL (`tlsCrl`: issuer, signature and critical
 *   extensions checked by tls-crl.ts, which says why not in the handshake;
 *   re-read when the file changes) or by the registry (`certificates[].status`
 *   of the agency record, live through NATS KV).
 * - Binding: the certificate's agency must be the agency of the read token
 *   (auth.ts calls assertClientCertAgency) and of the notice's signer, in any
 *   envelope format (the notices route hands the certificate's agency to the
 *   ingest pipeline, which refuses another signer before anything is stored).
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { AGENCY_URI_PREFIX, normalizeSerial, pkiPaths } from '../../certs/pki.js';
import { LiaisonError } from '../core/errors.js';
import type { RegistrySnapshot } from '../registry/model.js';
import type { X509Certificate as CaCertificate } from '@peculiar/x509';
import { caCertificates, checkCrl, MAX_CRL_BYTES, type CheckedCrl } from './tls-crl.js';

export type MtlsMode = 'off' | 'optional' | 'required';

/** The verified client certificate of a request: who it names, and which certificate it is. */
export interface ClientCert {
  agency: string;
  /** Upper-case hex, no leading zeros. */
  serial: string;
  fingerprint256: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's verified client certificate; null without mTLS or without a certificate. */
    clientCert: ClientCert | null;
  }
}

export interface TlsFiles {
  cert: string;
  key: string;
  /** The CA bundle trusted for client certificates (PEM, one or more). */
  ca: string;
  /** A CRL (PEM or DER) issued by that CA; optional. */
  crl: string | null;
}

/** The options for Fastify's `https` (node:https createServer). TLS 1.2 at least; session tickets stay on. */
export function httpsServerOptions(files: TlsFiles, mtls: MtlsMode) {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new Error(`TLS ${what} file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return {
    cert: read('certificate', files.cert),
    key: read('key', files.key),
    ...(mtls === 'off' ? {} : { ca: read('CA', files.ca) }),
    minVersion: 'TLSv1.2' as const,
    requestCert: mtls !== 'off',
    rejectUnauthorized: mtls === 'required',
    // A peer that opens TCP and never finishes the handshake is dropped after this.
    handshakeTimeout: 10_000,
  };
}

const AGENCY_URI = /^URI:urn:liaison:agency:([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)$/;

/** The agency named by a certificate: exactly one distinct `urn:liaison:agency:` SAN URI, else null. */
export function certificateAgency(cert: X509Certificate): string | null {
  const san = cert.subjectAltName ?? '';
  const found = new Set<string>();
  for (const entry of san.split(/,\s*/)) {
    const m = AGENCY_URI.exec(entry.trim());
    if (m) found.add(m[1] as string);
    else if (entry.includes(AGENCY_URI_PREFIX)) return null; // escaped or malformed: refuse rather than guess
  }
  return found.size === 1 ? ([...found][0] as string) : null;
}

/** What the TLS layer says about a socket's peer, memoised per connection. */
type PeerState = { kind: 'none' } | { kind: 'untrusted' } | { kind: 'unnamed' } | { kind: 'cert'; cert: ClientCert };
const peers = new WeakMap<object, PeerState>();

function peerState(socket: TLSSocket): PeerState {
  const known = peers.get(socket);
  if (known) return known;
  let state: PeerState;
  const x509 = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
  if (!x509) state = { kind: 'none' };
  else if (!socket.authorized) state = { kind: 'untrusted' };
  else {
    const agency = certificateAgency(x509);
    state =
      agency === null
        ? { kind: 'unnamed' }
        : {
            kind: 'cert',
            cert: { agency, serial: normalizeSerial(x509.serialNumber), fingerprint256: x509.fingerprint256 },
          };
  }
  peers.set(socket, state);
  return state;
}

/**
 * The revoked serials of the CRL file (checked by tls-crl.ts), re-read when the
 * file changes. A new file that does not pass is refused, logged once, and the
 * last good list stays in force: a broken file must not un-revoke anything.
 */
export class CrlSource {
  /** The file version (inode, size, mtime) last read, good or not. */
  #seen = '';
  #crl: CheckedCrl | null = null;
  #checkedAt = 0;
  #reading: Promise<void> | null = null;

  private constructor(
    private readonly file: string,
    private readonly cas: CaCertificate[],
    private readonly logger: Logger,
    private readonly recheckMs: number,
  ) {}

  /** Read and check the CRL; a missing or refused file stops start-up (the error names the file and why). */
  static async open(file: string, caPem: string, logger: Logger, recheckMs = 2000): Promise<CrlSource> {
    const source = new CrlSource(file, caCertificates(caPem), logger, recheckMs);
    await source.#read(true);
    source.#checkedAt = Date.now();
    return source;
  }

  async #read(strict: boolean): Promise<void> {
    const st = statSync(this.file, { throwIfNoEntry: false });
    if (!st) {
      if (strict) throw new Error(`TLS CRL file ${this.file} does not exist`);
      if (this.#seen !== 'gone')
        this.logger.error({ event: 'crl-missing', file: this.file }, 'the CRL file is gone; keeping the last one');
      this.#seen = 'gone';
      return;
    }
    const version = `${st.ino}/${st.size}/${st.mtimeMs}`;
    if (version === this.#seen) return;
    this.#seen = version;
    try {
      if (st.size > MAX_CRL_BYTES) throw new Error(`larger than ${MAX_CRL_BYTES} bytes`);
      const crl = await checkCrl(readFileSync(this.file), this.cas);
      this.#crl = crl;
      this.logger.info(
        { event: 'crl-loaded', revoked: crl.revoked.size, nextUpdate: crl.nextUpdate?.toISOString() },
        'CRL loaded',
      );
      if (crl.nextUpdate && crl.nextUpdate.getTime() < Date.now())
        this.logger.warn(
          { event: 'crl-stale', nextUpdate: crl.nextUpdate.toISOString() },
          'the CRL is past its nextUpdate; issue a new one',
        );
    } catch (e) {
      if (strict) throw new Error(`TLS CRL file ${this.file}: ${(e as Error).message}`);
      this.logger.error(
        { event: 'crl-invalid', file: this.file, err: (e as Error).message },
        'the new CRL is refused; keeping the last one',
      );
    }
  }

  /** Whether the serial is on the CRL; the file is looked at again at most every recheckMs. */
  async isRevoked(serial: string): Promise<boolean> {
    const now = Date.now();
    if (now - this.#checkedAt >= this.recheckMs && this.#reading === null) {
      this.#checkedAt = now;
      this.#reading = this.#read(false).finally(() => (this.#reading = null));
    }
    if (this.#reading) await this.#reading;
    return this.#crl?.revoked.has(serial) ?? false;
  }
}

export interface ClientCertOptions {
  mode: Exclude<MtlsMode, 'off'>;
  registry: () => RegistrySnapshot;
  crl: CrlSource | null;
}

/** Per-request client-certificate checks; registered only when mTLS is on. */
export const clientCertPlugin = fp<ClientCertOptions>(async (app: FastifyInstance, opts) => {
  app.decorateRequest('clientCert', null);
  // 'optional': a certificate that does not chain to the CA ends the connection before HTTP is read.
  app.server.on('secureConnection', (socket: TLSSocket) => {
    if (peerState(socket).kind === 'untrusted') socket.destroy();
  });
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const socket = request.raw.socket as TLSSocket;
    const state = socket.encrypted ? peerState(socket) : ({ kind: 'none' } as const);
    if (state.kind === 'untrusted')
      throw new LiaisonError('client-cert-invalid', {
        publicDetail: 'the client certificate is not issued by the network CA',
      });
    if (state.kind === 'unnamed')
      throw new LiaisonError('client-cert-invalid', {
        publicDetail: `the client certificate names no agency (SAN URI ${AGENCY_URI_PREFIX}<id>)`,
      });
    if (state.kind === 'none') {
      if (opts.mode === 'required')
        throw new LiaisonError('client-cert-required', {
          publicDetail: 'this gateway requires a client certificate from the network CA',
        });
      return;
    }
    const { cert } = state;
    if (await opts.crl?.isRevoked(cert.serial))
      throw new LiaisonError('client-cert-revoked', {
        detail: `serial ${cert.serial} is on the CRL`,
        publicDetail: 'the client certificate is revoked',
      });
    const agency = opts.registry().agency(cert.agency);
    if (!agency)
      throw new LiaisonError('client-cert-invalid', {
        publicDetail: 'the client certificate names an agency that is not a member',
      });
    if (agency.certificates?.some((c) => c.status === 'revoked' && normalizeSerial(c.serial) === cert.serial)) {
      throw new LiaisonError('client-cert-revoked', {
        detail: `serial ${cert.serial} is revoked in the registry`,
        publicDetail: 'the client certificate is revoked',
      });
    }
    request.clientCert = cert;
  });
});

/** Reads: the read token's agency must be the certificate's (no-op without a client certificate). */
export function assertClientCertAgency(request: FastifyRequest, agencyId: string): void {
  const cert = request.clientCert;
  if (cert && cert.agency !== agencyId) {
    throw new LiaisonError('client-cert-mismatch', {
      detail: `certificate of ${cert.agency}, token of ${agencyId}`,
      publicDetail: 'the client certificate belongs to another agency than the token',
    });
  }
}

/** The rate-limit key of a request: the certificate's agency (verified by TLS), else the client address. */
export function clientKey(request: FastifyRequest): string {
  const socket = request.raw.socket as TLSSocket;
  if (socket.encrypted) {
    const s = peerState(socket);
    if (s.kind === 'cert') return `agency:${s.cert.agency}`;
  }
  return `ip:${request.ip}`;
}

/** The TLS files of a configuration: the configured paths, else the PKI layout under dataDir/pki (certs/pki.ts). */
export function tlsFilesFromConfig(config: {
  dataDir: string;
  tlsCert: string | null;
  tlsKey: string | null;
  tlsCa: string | null;
  tlsCrl: string | null;
}): TlsFiles {
  const pki = pkiPaths(join(config.dataDir, 'pki'));
  const crl = config.tlsCrl ?? (existsSync(pki.crl) ? pki.crl : null);
  return {
    cert: config.tlsCert ?? pki.serverCert,
    key: config.tlsKey ?? pki.serverKey,
    ca: config.tlsCa ?? pki.caCert,
    crl,
  };
}

/** Everything the gateway needs for HTTPS from its configuration; throws, naming the file, when one cannot be used. */
export async function tlsSetup(
  config: {
    dataDir: string;
    tlsCert: string | null;
    tlsKey: string | null;
    tlsCa: string | null;
    tlsCrl: string | null;
    mtls: MtlsMode;
  },
  logger: Logger,
): Promise<{ https: ReturnType<typeof httpsServerOptions>; crl: CrlSource | null }> {
  const files = tlsFilesFromConfig(config);
  const https = httpsServerOptions(files, config.mtls);
  const crl =
    config.mtls !== 'off' && files.crl !== null ? await CrlSource.open(files.crl, String(https.ca), logger) : null;
  return { https, crl };
}
