/**
 * The network CA's CRL (RFC 5280 section 5): parsed by @peculiar/x509 (its
 * ASN.1 schemas are @peculiar/asn1-x509), then held to this policy before a
 * single serial is used:
 *
 * - the issuer is one of the trusted CA certificates (the same DER name), and
 *   that certificate's key verifies the signature;
 * - no critical extension that is not processed here, on the list or on an
 *   entry (RFC 5280 5.2 and 5.3: such a CRL MUST NOT be used). This refuses
 *   delta CRLs, partitioned CRLs (issuing distribution point) and indirect CRLs
 *   (certificate issuer): each is less than the CA's full list.
 *
 * Why a parsed list checked per request rather than Node's own `crl` option of
 * the TLS context (OpenSSL checks it in the handshake): a client whose
 * certificate is revoked is told so (403 `client-cert-revoked`, a stable code,
 * the serial in the log) in every mTLS mode, instead of a bare handshake
 * failure, or an "untrusted" disconnect under `optional`; a new CRL that does
 * not pass is refused while the last good one stays in force; and a CRL past
 * its nextUpdate is a loud warning, not every agency of the network locked out
 * by OpenSSL until someone re-signs it.
 */
// tsyringe, under @peculiar/x509, needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { X509Certificate, X509Crl } from '@peculiar/x509';
import { normalizeSerial } from '../../certs/pki.js';
import { CodedError } from '../core/errors.js';

export class CrlError extends CodedError<'crl-invalid'> {
  constructor(message: string) {
    super('crl-invalid', message);
  }
}

/** A CRL that passed every check: what the gateway uses of it. */
export interface CheckedCrl {
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date | null;
  /** Revoked serials, normalised (upper-case hex, no leading zeros). */
  revoked: ReadonlySet<string>;
}

/** A CRL larger than this is not read (the network's list is kilobytes; this bounds a wrong file). */
export const MAX_CRL_BYTES = 16 * 1024 * 1024;

/** CRL extensions processed here (RFC 5280 5.2): authority key identifier, issuer alternative name, CRL number. */
const KNOWN_CRL_EXTENSIONS = new Set(['2.5.29.35', '2.5.29.18', '2.5.29.20']);
/** Entry extensions processed here (RFC 5280 5.3): reason code, invalidity date. */
const KNOWN_ENTRY_EXTENSIONS = new Set(['2.5.29.21', '2.5.29.24']);

/** Parse a CRL, PEM or DER; anything that is not one is a CrlError. */
export function parseCrl(input: Uint8Array | string): X509Crl {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > MAX_CRL_BYTES) throw new CrlError(`larger than ${MAX_CRL_BYTES} bytes`);
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const pem = /-----BEGIN X509 CRL-----[A-Za-z0-9+/=\s]+-----END X509 CRL-----/.exec(text)?.[0];
  if (typeof input === 'string' && pem === undefined) throw new CrlError('no PEM X509 CRL block');
  try {
    return new X509Crl(pem ?? new Uint8Array(input as Uint8Array));
  } catch (e) {
    throw new CrlError(`not a DER CertificateList (${(e as Error).message})`);
  }
}

/** The trusted CA certificates of a PEM bundle. */
export function caCertificates(caPem: string): X509Certificate[] {
  return (caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new X509Certificate(p),
  );
}

const sameName = (a: ArrayBuffer, b: ArrayBuffer) => Buffer.from(a).equals(Buffer.from(b));

/** Parse and check a CRL against the trusted CAs (see the top of this file); throws a CrlError saying why it is refused. */
export async function checkCrl(input: Uint8Array | string, cas: readonly X509Certificate[]): Promise<CheckedCrl> {
  const crl = parseCrl(input);
  const issuerDer = crl.issuerName.toArrayBuffer();
  const issuers = cas.filter((ca) => sameName(ca.subjectName.toArrayBuffer(), issuerDer));
  if (issuers.length === 0)
    throw new CrlError(
      `its issuer (${crl.issuer}) is not the network CA (${cas.map((c) => c.subject).join('; ') || 'none'})`,
    );
  let signed = false;
  for (const ca of issuers) {
    // The CA's key with the CRL's own algorithm (given the certificate, the library would take the hash the CA
    // certificate was signed with). An unsupported or mismatched algorithm verifies nothing.
    if (
      await crl
        .verify({ publicKey: ca.publicKey }, webcrypto as unknown as Parameters<X509Crl['verify']>[1])
        .catch(() => false)
    ) {
      signed = true;
      break;
    }
  }
  if (!signed) throw new CrlError('its signature does not verify against the CA');
  for (const ext of crl.extensions) {
    if (ext.critical && !KNOWN_CRL_EXTENSIONS.has(ext.type))
      throw new CrlError(`it has a critical extension this gateway does not process (${ext.type})`);
  }
  const revoked = new Set<string>();
  for (const entry of crl.entries) {
    for (const ext of entry.extensions) {
      if (ext.critical && !KNOWN_ENTRY_EXTENSIONS.has(ext.type))
        throw new CrlError(`an entry has a critical extension this gateway does not process (${ext.type})`);
    }
    revoked.add(normalizeSerial(entry.serialNumber));
  }
  return { issuer: crl.issuer, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate ?? null, revoked };
}
