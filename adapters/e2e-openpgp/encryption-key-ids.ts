import { readKey, SignaturePacket, type PublicKey } from 'openpgp';
import type { OpenPgpAgencyKey } from '../../broker/registry/model.js';

/** Certificates kept, least recently used dropped first: a registry's worth (MAX_E2E_RECIPIENTS is 1,000). */
export const CERTIFICATES_KEPT = 2048;

/** The ids resolved at one instant, and the instants [from, until) (ms) they hold for. */
interface Resolved {
  from: number;
  until: number;
  ids: ReadonlySet<string>;
}

interface Certificate {
  key: PublicKey;
  /** Upper-case fingerprint: a record whose kid differs gets no key ids from it. */
  fingerprint: string;
  /** Every instant (whole seconds, ms) at which a time check of getEncryptionKey can change its answer, sorted. */
  breakpoints: readonly number[];
  resolved?: Resolved;
}

const NONE: ReadonlySet<string> = new Set();
// Keyed by the armored bytes themselves: a certificate updated in place (a subkey revoked, an
// expiry moved, one replaced under the same fingerprint) is other text, so never this entry.
const certificates = new Map<string, Promise<Certificate | undefined>>();

/**
 * The key ids (16 upper-case hex digits) of the record's certificate that
 * openpgp.js `getEncryptionKey` accepts at `at`: public, v4, fingerprint =
 * kid, neither revoked nor expired, the (sub)key encryption-capable and bound
 * at `at`. The record's own status and window are the caller's (keyStateAt).
 *
 * getEncryptionKey checks binding signatures, which is costly, and its answer
 * changes only at the certificate's own instants: key creation, signature
 * creation, signature and key expiry. So the ids are computed once and kept
 * for the interval between two such instants; an `at` outside it computes
 * them again. openpgp.js compares both the instant and the instant rounded
 * down to the second (util.normalizeDate), so an `at` within a breakpoint's
 * own second is never served from or kept in the cache.
 */
export async function encryptionKeyIdsAt(record: OpenPgpAgencyKey, at: Date): Promise<ReadonlySet<string>> {
  const cert = await certificateOf(record.armored);
  if (!cert || cert.fingerprint !== record.kid) return NONE;
  const t = at.getTime();
  const r = cert.resolved;
  if (r && r.from <= t && t < r.until) return r.ids;
  const ids = new Set<string>();
  for (const id of cert.key.getKeyIDs()) {
    try {
      await cert.key.getEncryptionKey(id, at);
      ids.add(id.toHex().toUpperCase());
    } catch {
      // not an encryption key valid at `at`
    }
  }
  const window = windowAround(cert.breakpoints, t);
  if (window) cert.resolved = { ...window, ids };
  return ids;
}

/** Every key id of the record's certificate (16 upper-case hex digits), valid or not; none when it is unusable. */
export async function keyIdsOf(record: OpenPgpAgencyKey): Promise<readonly string[]> {
  const cert = await certificateOf(record.armored);
  return cert && cert.fingerprint === record.kid ? cert.key.getKeyIDs().map((k) => k.toHex().toUpperCase()) : [];
}

/** The parsed certificate: public and v4, else undefined. Kept by its armored text, least recently used dropped first. */
function certificateOf(armored: string): Promise<Certificate | undefined> {
  let p = certificates.get(armored);
  if (p) certificates.delete(armored);
  else {
    p = readKey({ armoredKey: armored }).then(
      (key) =>
        key.isPrivate() || key.keyPacket.version !== 4
          ? undefined
          : { key, fingerprint: key.getFingerprint().toUpperCase(), breakpoints: breakpointsOf(key) },
      () => undefined,
    );
    if (certificates.size >= CERTIFICATES_KEPT) certificates.delete(certificates.keys().next().value as string);
  }
  certificates.set(armored, p);
  return p;
}

/** RFC 9580 5.2.3.18 and 5.2.3.13: key expiry counts from its key's creation, signature expiry from the signature's. */
export function breakpointsOf(key: PublicKey): number[] {
  const keyCreated = key.getKeys().map((k) => +k.keyPacket.created);
  const at = new Set<number>(keyCreated);
  const addSignature = (s: SignaturePacket) => {
    if (!s.created) return;
    at.add(+s.created);
    if (s.signatureExpirationTime) at.add(+s.created + s.signatureExpirationTime * 1000);
    if (s.keyExpirationTime) for (const c of keyCreated) at.add(c + s.keyExpirationTime * 1000);
    if (s.embeddedSignature) addSignature(s.embeddedSignature);
  };
  for (const p of key.toPacketList()) if (p instanceof SignaturePacket) addSignature(p);
  return [...at].filter(Number.isFinite).sort((a, b) => a - b);
}

/**
 * The instants [from, until) around `t` with no breakpoint in them nor in the
 * seconds that hold one; undefined when `t` is within a breakpoint's second.
 */
export function windowAround(breakpoints: readonly number[], t: number): { from: number; until: number } | undefined {
  const second = Math.floor(t / 1000) * 1000;
  let from = -Infinity;
  let until = Infinity;
  for (const b of breakpoints) {
    if (b === second) return undefined;
    if (b < second) from = b + 1000;
    else {
      until = b;
      break;
    }
  }
  return { from, until };
}
