/**
 * A minimal, defensive reader of an X.509 CRL (RFC 5280 section 5.1): the
 * serial numbers it revokes, its update times, and a check of its signature
 * against the CA. Pure: bytes in, data out. Every length is bounds-checked;
 * anything unexpected is an error, never a partial list.
 */
import { verify as nodeVerify, type X509Certificate } from 'node:crypto';
import { normalizeSerial } from '../../certs/pki.js';

export class CrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CrlError';
  }
}

interface Tlv {
  tag: number;
  /** Offset of the first content byte. */
  start: number;
  /** Offset just past the content. */
  end: number;
  /** Offset of the tag byte (for slicing the whole element). */
  header: number;
}

/** Read one DER element at `pos` within `limit` (RFC 5280 uses DER: definite lengths only). */
function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new CrlError('truncated element');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new CrlError('multi-byte tags are not used in a CRL');
  let len = buf[pos + 1] as number;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new CrlError('unsupported length encoding');
    if (p + n > limit) throw new CrlError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    p += n;
  }
  if (p + len > limit) throw new CrlError('element runs past its parent');
  return { tag, start: p, end: p + len, header: pos };
}

function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end; ) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

const SEQ = 0x30;
const INTEGER = 0x02;
const OID = 0x06;
const BIT_STRING = 0x03;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

function oid(buf: Uint8Array, t: Tlv): string {
  const b = buf.subarray(t.start, t.end);
  if (b.length === 0) throw new CrlError('empty OID');
  const parts: number[] = [Math.floor((b[0] as number) / 40), (b[0] as number) % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + ((b[i] as number) & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new CrlError('OID arc too large');
    if (!((b[i] as number) & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function time(buf: Uint8Array, t: Tlv): Date {
  const s = Buffer.from(buf.subarray(t.start, t.end)).toString('latin1');
  const m = t.tag === UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new CrlError('bad time');
  let year = Number(m[1]);
  if (t.tag === UTC_TIME) year += year < 50 ? 2000 : 1900; // RFC 5280 4.1.2.5.1
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

const isTime = (t: Tlv | undefined) => t !== undefined && (t.tag === UTC_TIME || t.tag === GENERALIZED_TIME);

/** Signature algorithms a CRL may use here, by OID → the digest for crypto.verify (null: the key decides, Ed25519). */
const SIG_ALGS: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519
};

export interface ParsedCrl {
  thisUpdate: Date;
  nextUpdate: Date | null;
  /** Revoked serials, normalised (upper-case hex, no leading zeros). */
  revoked: ReadonlySet<string>;
  /** The DER of tbsCertList, the signed part. */
  tbs: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
}

/** PEM (one `X509 CRL` block) or DER bytes → the DER. */
export function crlDer(input: Uint8Array | string): Uint8Array {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const m = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(text);
  if (m) return Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64');
  if (typeof input === 'string') throw new CrlError('no PEM X509 CRL block');
  return input;
}

export function parseCrl(input: Uint8Array | string): ParsedCrl {
  const der = crlDer(input);
  const outer = readTlv(der, 0, der.length);
  if (outer.tag !== SEQ || outer.end !== der.length) throw new CrlError('not a DER CertificateList');
  const [tbsT, algT, sigT, ...rest] = children(der, outer);
  if (!tbsT || !algT || !sigT || rest.length || tbsT.tag !== SEQ || algT.tag !== SEQ || sigT.tag !== BIT_STRING) throw new CrlError('bad CertificateList');
  const algOid = children(der, algT)[0];
  if (!algOid || algOid.tag !== OID) throw new CrlError('bad signature algorithm');
  if (der[sigT.start] !== 0) throw new CrlError('signature BIT STRING has unused bits');

  const tbs = children(der, tbsT);
  let i = 0;
  if (tbs[i]?.tag === INTEGER) i++; // version v2
  if (tbs[i]?.tag !== SEQ) throw new CrlError('bad tbsCertList signature');
  i++;
  if (tbs[i]?.tag !== SEQ) throw new CrlError('bad issuer');
  i++;
  if (!isTime(tbs[i])) throw new CrlError('bad thisUpdate');
  const thisUpdate = time(der, tbs[i] as Tlv);
  i++;
  let nextUpdate: Date | null = null;
  if (isTime(tbs[i])) nextUpdate = time(der, tbs[i++] as Tlv);
  const revoked = new Set<string>();
  if (tbs[i]?.tag === SEQ) {
    for (const entry of children(der, tbs[i] as Tlv)) {
      const serial = entry.tag === SEQ ? children(der, entry)[0] : undefined;
      if (!serial || serial.tag !== INTEGER || serial.end === serial.start || serial.end - serial.start > 64) throw new CrlError('bad revoked entry');
      revoked.add(normalizeSerial(Buffer.from(der.subarray(serial.start, serial.end)).toString('hex')));
    }
    i++;
  }
  return {
    thisUpdate,
    nextUpdate,
    revoked,
    tbs: der.subarray(tbsT.header, tbsT.end),
    signatureAlgorithm: oid(der, algOid),
    signature: der.subarray(sigT.start + 1, sigT.end),
  };
}

/** Whether one of `cas` signed the CRL. An unknown algorithm verifies nothing. */
export function crlSignedBy(crl: ParsedCrl, cas: readonly X509Certificate[]): boolean {
  if (!(crl.signatureAlgorithm in SIG_ALGS)) return false;
  const digest = SIG_ALGS[crl.signatureAlgorithm] ?? null;
  return cas.some((ca) => {
    try {
      return nodeVerify(digest, crl.tbs, ca.publicKey, crl.signature);
    } catch {
      return false;
    }
  });
}
