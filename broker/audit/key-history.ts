/**
 * Origin signatures against the agency key history, for `liaison audit verify`.
 *
 * The registry KV bucket keeps the past revisions of every `agency.*` record.
 * `mergeKeyHistory` folds them (oldest first) into the union of every key ever
 * registered, one record per (agency, kid, key material), carrying the status
 * of the newest revision that listed it. `checkOriginSignatures` then checks
 * every notice still held against its log entry:
 *
 *  - the stored signed object (a compact JWS, or an armored OpenPGP signed
 *    message) verifies with the key named by the entry's `signer_kid`, with the
 *    same header/packet rules ingest applies: the verifier of the entry's
 *    format (broker/formats/registry.ts; adapters/<format>/stored-signatures.ts);
 *    an entry whose format is not registered is a bad entry;
 *  - that key belongs to the entry's origin agency;
 *  - the key was valid at the entry's `received_at` (keyStateAt): a key rotated
 *    or revoked LATER still verifies what it signed while it was valid.
 *
 * Pure: the evidence comes in as data (no NATS here, except
 * `readAgencyKeyHistory`, which only takes a KV-like reader).
 */

import type { CodeOf } from '../core/errors.js';
import {
  ENVELOPE_FORMATS,
  envelopeFormat,
  isEnvelopeFormatName,
  type EnvelopeFormatName,
} from '../formats/registry.js';
import type { HistoricalAgencyKey as AnyHistoricalKey, StoredSignatureVerifier } from '../formats/registry.js';
import { decodeEntry, type NoticeLogEntry } from '../log/entry.js';
import { checkComplaintSignatures } from './complaints.js';
import { auditLogOnAllCores } from './verify-all-cores.js';
import { type AuditEntry, type AuditInput, type AuditProblem, type AuditReport, type Progress } from './verify.js';

/** One key as the registry history knew it (the archive's `agency_keys`), of a registered format. */
export type HistoricalAgencyKey = AnyHistoricalKey & { format: EnvelopeFormatName };

/** A revision of an `agency.<id>` registry record (its JSON value); DEL/PURGE markers are left out by the reader. */
export interface AgencyRevision {
  agencyId: string;
  record: unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optStr = (v: unknown) => (typeof v === 'string' ? v : undefined);

function toHistorical(
  agency: string,
  k: unknown,
  format: EnvelopeFormatName,
): { key: HistoricalAgencyKey; material: string } | undefined {
  if (
    !isObj(k) ||
    typeof k.kid !== 'string' ||
    (k.use !== 'sig' && k.use !== 'enc') ||
    (k.status !== 'active' && k.status !== 'revoked')
  )
    return undefined;
  const material = envelopeFormat(format).keyMaterial(k);
  if (!material) return undefined;
  const out: HistoricalAgencyKey = { agency, kid: k.kid, use: k.use, format, status: k.status, ...material.fields };
  for (const f of ['not_before', 'not_after', 'revoked_at'] as const) {
    const v = optStr(k[f]);
    if (v !== undefined) out[f] = v;
  }
  return { key: out, material: material.id };
}

/**
 * The union of every key in the given revisions (oldest first), by agency, kid
 * and key material; each with the status fields of the newest revision that
 * listed it. A record that is not an agency is skipped.
 */
export function mergeKeyHistory(revisions: Iterable<AgencyRevision>): HistoricalAgencyKey[] {
  const byId = new Map<string, HistoricalAgencyKey>();
  for (const { agencyId, record } of revisions) {
    if (!isObj(record) || record.id !== agencyId) continue;
    // Each format lists its keys in a field of its own (`keys`, `openpgp_keys`).
    const keys = ENVELOPE_FORMATS.flatMap((f) => {
      const listed = record[f.agencyKeysField];
      return Array.isArray(listed) ? listed.map((k) => toHistorical(agencyId, k, f.name)) : [];
    });
    for (const h of keys) {
      if (!h) continue;
      const id = JSON.stringify([h.key.agency, h.key.kid, h.material]);
      byId.delete(id); // re-insert: the map's order is that of the newest revision
      byId.set(id, h.key);
    }
  }
  return [...byId.values()];
}

/** What readAgencyKeyHistory needs of a NATS KV bucket. */
export interface KvHistoryReader {
  history(opts?: {
    key?: string | string[];
  }): Promise<AsyncIterable<{ key: string; operation: string; value: Uint8Array; revision: number }>>;
}

/** Every stored revision of every `agency.*` record (deleted agencies included), merged into the key history. */
export async function readAgencyKeyHistory(kv: KvHistoryReader): Promise<HistoricalAgencyKey[]> {
  const revisions: (AgencyRevision & { revision: number })[] = [];
  const dec = new TextDecoder();
  for await (const e of await kv.history({ key: 'agency.>' })) {
    if (e.operation !== 'PUT') continue;
    let record: unknown;
    try {
      record = JSON.parse(dec.decode(e.value));
    } catch {
      continue;
    }
    revisions.push({ agencyId: e.key.slice('agency.'.length), record, revision: e.revision });
  }
  revisions.sort((a, b) => a.revision - b.revision);
  return mergeKeyHistory(revisions);
}

/** Check the archive's `agency_keys` (defensive: it is evidence from the hub). */
export function parseAgencyKeys(raw: unknown, fail: (message: string) => Error): HistoricalAgencyKey[] {
  if (!Array.isArray(raw)) throw fail('agency_keys must be an array');
  return raw.map((k, i) => {
    if (!isObj(k) || typeof k.agency !== 'string' || !isEnvelopeFormatName(k.format))
      throw fail(`agency_keys[${i}] must name an agency and a format`);
    const h = toHistorical(k.agency, k, k.format);
    if (!h) throw fail(`agency_keys[${i}] is not a key record`);
    return h.key;
  });
}

/** A format's findings, and an entry whose format is not registered (it cannot be checked: a bad entry, never "not checked"). */
export type OriginProblemCode = CodeOf<'audit-origin'>;

export interface OriginCheckInput {
  entries: readonly AuditEntry[];
  notices: readonly { noticeId: string; signed: Uint8Array }[];
  agencyKeys: readonly HistoricalAgencyKey[];
}

export interface OriginCheckResult {
  /** Notices whose origin signature was verified (good or bad). */
  checked: number;
  /** Notices that could not be checked (no entry for them). */
  notChecked: number;
  problems: (AuditProblem & { code: OriginProblemCode })[];
}

/** A held notice and the log entry that commits to it (undefined when there is none). */
interface HeldNotice {
  notice: OriginCheckInput['notices'][number];
  at: { index: number; entry: NoticeLogEntry } | undefined;
}

type OriginProblems = OriginCheckResult['problems'];

/**
 * Verify the origin signature of every notice still held against the key
 * history, each with the verifier of its entry's format (broker/formats/registry.ts).
 * Deterministic: problems are in log order whatever order the checks finish in.
 */
export async function checkOriginSignatures(input: OriginCheckInput): Promise<OriginCheckResult> {
  const verifiers = new Map<string, StoredSignatureVerifier>(
    ENVELOPE_FORMATS.map((f) => [f.name, f.storedSignatures(input.agencyKeys)]),
  );
  const held = heldInLogOrder(input.entries, input.notices);
  const inLog = held.filter((h) => h.at !== undefined);
  const problems = await runBounded(
    inLog.map(({ notice, at }) => {
      const verifier = verifiers.get(at!.entry.format);
      return {
        concurrency: verifier?.concurrency ?? 1,
        run: () => checkOriginSignature(notice, at!.index, at!.entry, verifier),
      };
    }),
  );
  // A notice without an entry is not checked: auditLog reports it (notice-not-in-log).
  return { checked: inLog.length, notChecked: held.length - inLog.length, problems: problems.flat() };
}

/**
 * Without the key history no signature can be checked, but an entry's format
 * can: a held notice whose entry names an unregistered format is a bad entry
 * (checked), the others are not checked.
 */
export function checkOriginFormats(input: Omit<OriginCheckInput, 'agencyKeys'>): OriginCheckResult {
  const held = heldInLogOrder(input.entries, input.notices);
  const problems = held.flatMap(({ notice, at }) => (at ? unknownFormatProblem(notice, at.index, at.entry) : []));
  return { checked: problems.length, notChecked: held.length - problems.length, problems };
}

/** The first notice entry of each notice id, by id; what does not decode is left to auditLog (entry-malformed). */
function noticeEntriesById(entries: readonly AuditEntry[]): Map<string, { index: number; entry: NoticeLogEntry }> {
  const entryOf = new Map<string, { index: number; entry: NoticeLogEntry }>();
  for (let pos = 0; pos < entries.length; pos++) {
    try {
      const e = decodeEntry(entries[pos]!.bytes) as Partial<NoticeLogEntry>;
      if (e.kind === 'notice' && typeof e.notice_id === 'string' && !entryOf.has(e.notice_id))
        entryOf.set(e.notice_id, { index: pos, entry: e as NoticeLogEntry });
    } catch {
      // auditLog reports malformed entries.
    }
  }
  return entryOf;
}

/** The held notices with their entries, in log order (those without an entry last). */
function heldInLogOrder(entries: readonly AuditEntry[], notices: OriginCheckInput['notices']): HeldNotice[] {
  const entryOf = noticeEntriesById(entries);
  return notices
    .map((notice) => ({ notice, at: entryOf.get(notice.noticeId) }))
    .sort((a, b) => (a.at?.index ?? Number.MAX_SAFE_INTEGER) - (b.at?.index ?? Number.MAX_SAFE_INTEGER));
}

function originProblem(
  notice: HeldNotice['notice'],
  index: number,
  code: OriginProblemCode,
  message: string,
): OriginProblems {
  return [{ code, index, message: `notice ${notice.noticeId} (entry ${index}): ${message}` }];
}

/** An entry whose format is not registered: its signature cannot be checked, so it is a bad entry. */
function unknownFormatProblem(notice: HeldNotice['notice'], index: number, entry: NoticeLogEntry): OriginProblems {
  return isEnvelopeFormatName(entry.format)
    ? []
    : originProblem(
        notice,
        index,
        'notice-format-unknown',
        `the entry's format ${JSON.stringify(entry.format)} is not a registered envelope format`,
      );
}

/** One notice's problems (none when its origin signature holds): a registered format, a received_at that is a time, then the format's verifier. */
async function checkOriginSignature(
  notice: HeldNotice['notice'],
  index: number,
  entry: NoticeLogEntry,
  verifier: StoredSignatureVerifier | undefined,
): Promise<OriginProblems> {
  if (!verifier) return unknownFormatProblem(notice, index, entry);
  const at = new Date(entry.received_at);
  if (Number.isNaN(at.getTime()))
    return originProblem(
      notice,
      index,
      'notice-signer-not-valid',
      `received_at ${JSON.stringify(entry.received_at)} is not a time`,
    );
  // The key the entry names must be one key, of the origin agency, valid at received_at: the format's verifier says.
  const found = await verifier.verify(notice.signed, {
    signerKid: entry.signer_kid,
    originAgency: entry.origin?.agency,
    receivedAt: entry.received_at,
    at,
  });
  return found ? originProblem(notice, index, found.code, found.message) : [];
}

/**
 * Run the checks in order, each with the concurrency its format allows (JOSE:
 * a batch, as WebCrypto verifies on every core; OpenPGP: one). A check that
 * must run alone waits for everything started. Results are in the given order.
 */
async function runBounded<T>(checks: readonly { concurrency: number; run: () => Promise<T> }[]): Promise<T[]> {
  const results: Promise<T>[] = [];
  let inFlight: Promise<unknown>[] = [];
  for (const check of checks) {
    const run = check.run();
    results.push(run);
    if (check.concurrency > 1) {
      inFlight.push(run);
      if (inFlight.length < check.concurrency) continue;
    }
    await Promise.all(inFlight);
    inFlight = [];
    await run;
  }
  return Promise.all(results);
}

/**
 * auditLog, then the origin signatures of the notices held when the evidence
 * carries the agency key history (`agencyKeys`). Without it (an archive of
 * format 1, the API) a notice held is counted as not checked, unless its
 * entry names an unregistered format: that is reported (checkOriginFormats).
 * With the key history and complaints held (archive format 4), the
 * recipients' signatures on the complaints too (complaints.ts).
 */
export async function auditLogWithOrigins(input: AuditInput, onProgress?: Progress): Promise<AuditReport> {
  const report = await auditLogOnAllCores(input, onProgress);
  const notices = input.notices ?? [];
  const r = input.agencyKeys
    ? await checkOriginSignatures({ entries: input.entries, notices, agencyKeys: input.agencyKeys })
    : checkOriginFormats({ entries: input.entries, notices });
  const c =
    input.agencyKeys && input.complaints
      ? await checkComplaintSignatures(input.entries, input.complaints, input.agencyKeys)
      : undefined;
  const more = [...r.problems, ...(c?.problems ?? [])];
  const problems = [...report.problems, ...more].slice(0, 100);
  const bad = [report.firstBadEntry, ...more.map((p) => p.index)].filter((i): i is number => i !== undefined);
  return {
    ...report,
    ok: report.ok && more.length === 0,
    ...(c ? { complaintSignaturesChecked: c.checked } : {}),
    problems,
    firstBadEntry: bad.length ? Math.min(...bad) : undefined,
    signaturesChecked: r.checked,
    signaturesNotChecked: r.notChecked,
  };
}
