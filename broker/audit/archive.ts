/**
 * The self-contained audit archive that `liaison audit export` writes and
 * `liaison audit verify --archive` checks offline. JSON:
 *
 *   { "format": "liaison-audit-archive/4", "origin", "exported_at",
 *     "broker_keys":  [public JWK, ...]             the broker's signing key history
 *     "entries":      [{ "index", "entry", "signature"? }]
 *                    entry = base64url of the exact hashed bytes; signature = its gateway
 *                    signature (compact JWS, detached payload; absent on entries written
 *                    before entry signatures) (format 3)
 *     "checkpoints":  [{ "note", "consistency_from_previous": [hex] }]   publication order
 *     "leaf_hashes":  [hex]                          from the tiles (to name a changed entry)
 *     "notices":      [{ "notice_id", "signed" }]    notices still held, signed bytes base64url
 *     "agency_keys":  [{ "agency", "kid", "use", "format", "jwk" | "armored",
 *                        "status", "not_before"?, "not_after"?, "revoked_at"? }]
 *                    every agency key any stored registry revision listed (format 2)
 *     "registry_events": [{ "event_id", "jws" }]     broker-signed registry events (key changes), optional
 *     "complaints":   [{ "notice_id", "agency", "jws" }]   recipients' complaints, opened (format 4; contents only)
 *   }
 *
 * Formats 1 (no agency_keys), 2 (no entry signatures) and 3 (no complaints)
 * are still read: what they lack is counted as not checked.
 *
 * The file is evidence from the hub, so reading it is defensive: shapes and
 * sizes are checked, and nothing in it is trusted until auditLog has checked it.
 */

import { Buffer } from 'node:buffer';

import { CodedError } from '../core/errors.js';
import type { PublicSigningJwk } from '../log/checkpoint.js';
import { parseAgencyKeys, type HistoricalAgencyKey } from './key-history.js';
import type { AuditInput } from './verify.js';

export const ARCHIVE_FORMAT = 'liaison-audit-archive/4';
/** Formats this reader accepts: 1 has no agency key history, 2 no entry signatures, 3 no complaints. */
export const ARCHIVE_FORMATS: readonly string[] = [
  'liaison-audit-archive/1',
  'liaison-audit-archive/2',
  'liaison-audit-archive/3',
  ARCHIVE_FORMAT,
];
/** The formats whose entries carry their gateway signatures. */
const SIGNED_FORMATS: readonly string[] = ['liaison-audit-archive/3', ARCHIVE_FORMAT];

export interface AuditArchive {
  format: typeof ARCHIVE_FORMAT | 'liaison-audit-archive/3' | 'liaison-audit-archive/2' | 'liaison-audit-archive/1';
  origin: string;
  exported_at: string;
  broker_keys: PublicSigningJwk[];
  entries: { index: number; entry: string; signature?: string }[];
  checkpoints: { note: string; consistency_from_previous: string[] }[];
  leaf_hashes?: string[];
  /** Absent unless the export was encrypted to the auditor: an archive in clear never holds notice content. */
  notices?: { notice_id: string; signed: string }[];
  /** The notices and complaints encrypted to an auditor's JWK (sealed-notices.ts); `audit verify --decrypt-with` opens them. */
  notices_jwe?: string;
  /** The agency key history (format 2). */
  agency_keys?: HistoricalAgencyKey[];
  /** Registry events (key changes) as held in REGISTRY_EVENTS. */
  registry_events?: { event_id: string; jws: string }[];
  /** Recipients' complaints as held in ACKS (format 4). */
  complaints?: { notice_id: string; agency: string; jws: string }[];
}

export class ArchiveError extends CodedError<'archive-invalid'> {
  constructor(message: string) {
    super('archive-invalid', `audit archive: ${message}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown, what: string): unknown[] => {
  if (!Array.isArray(v)) throw new ArchiveError(`${what} must be an array`);
  return v;
};
const str = (v: unknown, what: string, max = 1 << 26): string => {
  if (typeof v !== 'string' || v.length > max) throw new ArchiveError(`${what} must be a string`);
  return v;
};
const B64U = /^[A-Za-z0-9_-]*$/;
const HEX32 = /^[0-9a-f]{64}$/;
const b64u = (v: unknown, what: string): Uint8Array => {
  const s = str(v, what);
  if (!B64U.test(s)) throw new ArchiveError(`${what} must be base64url`);
  return new Uint8Array(Buffer.from(s, 'base64url'));
};
const hex32 = (v: unknown, what: string): Uint8Array => {
  const s = str(v, what, 64);
  if (!HEX32.test(s)) throw new ArchiveError(`${what} must be 64 lowercase hex digits`);
  return new Uint8Array(Buffer.from(s, 'hex'));
};

/** Check an archive's shape and turn it into auditLog's input. */
export function archiveToAuditInput(raw: unknown): AuditInput {
  if (!isObj(raw) || !ARCHIVE_FORMATS.includes(String(raw.format)))
    throw new ArchiveError(`not a ${ARCHIVE_FORMATS.join(' or ')} file`);
  const origin = str(raw.origin, 'origin', 255);
  const brokerKeys = arr(raw.broker_keys, 'broker_keys').map((k, i) => {
    if (!isObj(k)) throw new ArchiveError(`broker_keys[${i}] must be a JWK`);
    return {
      kty: String(k.kty),
      crv: String(k.crv),
      x: String(k.x),
      ...(typeof k.kid === 'string' ? { kid: k.kid } : {}),
    };
  });
  const entries = arr(raw.entries, 'entries').map((e, i) => {
    if (!isObj(e) || typeof e.index !== 'number' || !Number.isSafeInteger(e.index) || e.index < 0)
      throw new ArchiveError(`entries[${i}] needs a non-negative integer index`);
    const signature = e.signature === undefined ? undefined : str(e.signature, `entries[${i}].signature`, 2048);
    return {
      index: e.index,
      bytes: b64u(e.entry, `entries[${i}].entry`),
      ...(signature !== undefined ? { signature } : {}),
    };
  });
  const entrySignatures = SIGNED_FORMATS.includes(String(raw.format));
  const checkpoints = arr(raw.checkpoints, 'checkpoints').map((c, i) => {
    if (!isObj(c)) throw new ArchiveError(`checkpoints[${i}] must be an object`);
    const proof =
      c.consistency_from_previous === undefined
        ? []
        : arr(c.consistency_from_previous, `checkpoints[${i}].consistency_from_previous`);
    if (proof.length > 128) throw new ArchiveError(`checkpoints[${i}]: proof too long`);
    return {
      note: str(c.note, `checkpoints[${i}].note`, 65536),
      consistencyFromPrevious: proof.map((h, k) => hex32(h, `checkpoints[${i}].consistency_from_previous[${k}]`)),
    };
  });
  const leafHashes =
    raw.leaf_hashes === undefined
      ? undefined
      : arr(raw.leaf_hashes, 'leaf_hashes').map((h, i) => hex32(h, `leaf_hashes[${i}]`));
  // No notices in the archive (the default export): verify counts them as not fetched, as with the API.
  const notices =
    raw.notices === undefined
      ? undefined
      : arr(raw.notices, 'notices').map((n, i) => {
          if (!isObj(n)) throw new ArchiveError(`notices[${i}] must be an object`);
          return {
            noticeId: str(n.notice_id, `notices[${i}].notice_id`, 64),
            signed: b64u(n.signed, `notices[${i}].signed`),
          };
        });
  const agencyKeys =
    raw.agency_keys === undefined ? undefined : parseAgencyKeys(raw.agency_keys, (m) => new ArchiveError(m));
  const registryEvents =
    raw.registry_events === undefined
      ? undefined
      : arr(raw.registry_events, 'registry_events').map((r, i) => {
          if (!isObj(r)) throw new ArchiveError(`registry_events[${i}] must be an object`);
          return {
            eventId: str(r.event_id, `registry_events[${i}].event_id`, 64),
            jws: str(r.jws, `registry_events[${i}].jws`, 1 << 20),
          };
        });
  // Format 4 holds the complaints (an empty list when there are none) when the archive carries contents: they are
  // sealed under their notices' keys like the notices (a detail may quote the notice). No list: not checked.
  const complaints =
    raw.format === ARCHIVE_FORMAT && raw.complaints !== undefined
      ? arr(raw.complaints, 'complaints').map((c, i) => {
          if (!isObj(c)) throw new ArchiveError(`complaints[${i}] must be an object`);
          return {
            noticeId: str(c.notice_id, `complaints[${i}].notice_id`, 64),
            agency: str(c.agency, `complaints[${i}].agency`, 64),
            jws: str(c.jws, `complaints[${i}].jws`, 1 << 16),
          };
        })
      : undefined;
  return {
    origin,
    brokerKeys,
    entries,
    entrySignatures,
    checkpoints,
    ...(leafHashes ? { leafHashes } : {}),
    ...(notices ? { notices } : {}),
    ...(agencyKeys ? { agencyKeys } : {}),
    ...(registryEvents ? { registryEvents } : {}),
    ...(complaints ? { complaints } : {}),
  };
}
