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

import { ENVELOPE_FORMATS, isEnvelopeFormatName, type EnvelopeFormatName } from '../formats/registry.js';
import type { HistoricalAgencyKey as AnyHistoricalKey, OriginProblemCode as FormatProblemCode, StoredSignatureVerifier } from '../formats/registry.js';
import { decodeEntry, type NoticeLogEntry } from '../log/entry.js';
import { auditLog, type AuditEntry, type AuditInput, type AuditProblem, type AuditReport, type Progress } from './verify.js';

/** One key as the registry history knew it (the archive's `agency_keys`), of a registered format. */
export type HistoricalAgencyKey = AnyHistoricalKey & { format: EnvelopeFormatName };

/** A revision of an `agency.<id>` registry record (its JSON value); DEL/PURGE markers are left out by the reader. */
export interface AgencyRevision {
  agencyId: string;
  record: unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optStr = (v: unknown) => (typeof v === 'string' ? v : undefined);

function toHistorical(agency: string, k: unknown, format: EnvelopeFormatName): { key: HistoricalAgencyKey; material: string } | undefined {
  if (!isObj(k) || typeof k.kid !== 'string' || (k.use !== 'sig' && k.use !== 'enc') || (k.status !== 'active' && k.status !== 'revoked')) return undefined;
  const material = ENVELOPE_FORMATS.find((f) => f.name === format)!.keyMaterial(k);
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
  history(opts?: { key?: string | string[] }): Promise<AsyncIterable<{ key: string; operation: string; value: Uint8Array; revision: number }>>;
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
    if (!isObj(k) || typeof k.agency !== 'string' || !isEnvelopeFormatName(k.format)) throw fail(`agency_keys[${i}] must name an agency and a format`);
    const h = toHistorical(k.agency, k, k.format);
    if (!h) throw fail(`agency_keys[${i}] is not a key record`);
    return h.key;
  });
}

/** A format's findings, and an entry whose format is not registered (it cannot be checked: a bad entry, never "not checked"). */
export type OriginProblemCode = FormatProblemCode | 'notice-format-unknown';

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

/**
 * Verify the origin signature of every notice still held against the key
 * history, each with the verifier of its entry's format (broker/formats/registry.ts).
 * Deterministic: problems are in log order whatever order the checks finish in.
 */
export async function checkOriginSignatures(input: OriginCheckInput): Promise<OriginCheckResult> {
  const entryOf = new Map<string, { index: number; entry: NoticeLogEntry }>();
  for (let pos = 0; pos < input.entries.length; pos++) {
    try {
      const e = decodeEntry(input.entries[pos]!.bytes) as Partial<NoticeLogEntry>;
      if (e.kind === 'notice' && typeof e.notice_id === 'string' && !entryOf.has(e.notice_id)) entryOf.set(e.notice_id, { index: pos, entry: e as NoticeLogEntry });
    } catch {
      // auditLog reports malformed entries.
    }
  }
  const verifiers = new Map<string, StoredSignatureVerifier>(ENVELOPE_FORMATS.map((f) => [f.name, f.storedSignatures(input.agencyKeys)]));

  let checked = 0;
  let notChecked = 0;
  const ordered = input.notices
    .map((n) => ({ n, e: entryOf.get(n.noticeId) }))
    .sort((a, b) => (a.e?.index ?? Number.MAX_SAFE_INTEGER) - (b.e?.index ?? Number.MAX_SAFE_INTEGER));
  /** One notice's problems (none when its origin signature holds). */
  const checkOne = async (n: (typeof input.notices)[number], index: number, entry: NoticeLogEntry, verifier: StoredSignatureVerifier | undefined): Promise<OriginCheckResult['problems']> => {
    const where = `notice ${n.noticeId} (entry ${index})`;
    const problem = (code: OriginProblemCode, message: string) => [{ code, index, message: `${where}: ${message}` }];
    if (!verifier) return problem('notice-format-unknown', `the entry's format ${JSON.stringify(entry.format)} is not a registered envelope format`);
    const at = new Date(entry.received_at);
    if (Number.isNaN(at.getTime())) return problem('notice-signer-not-valid', `received_at ${JSON.stringify(entry.received_at)} is not a time`);
    // The key the entry names must be one key, of the origin agency, valid at received_at: the format's verifier says.
    const found = await verifier.verify(n.signed, { signerKid: entry.signer_kid, originAgency: entry.origin?.agency, receivedAt: entry.received_at, at });
    return found ? problem(found.code, found.message) : [];
  };

  // Each format says how many of its checks may run at once (JOSE: a batch, as WebCrypto verifies on every core;
  // OpenPGP: one). A check that must run alone waits for everything started.
  const results: Promise<OriginCheckResult['problems']>[] = [];
  let inFlight: Promise<unknown>[] = [];
  for (const { n, e } of ordered) {
    if (!e) {
      notChecked++; // no entry: auditLog reports it (notice-not-in-log)
      continue;
    }
    checked++;
    const verifier = verifiers.get(e.entry.format);
    const run = checkOne(n, e.index, e.entry, verifier);
    results.push(run);
    const concurrency = verifier?.concurrency ?? 1;
    if (concurrency > 1) {
      inFlight.push(run);
      if (inFlight.length < concurrency) continue;
    }
    await Promise.all(inFlight);
    inFlight = [];
    await run;
  }
  return { checked, notChecked, problems: (await Promise.all(results)).flat() };
}

/**
 * auditLog, then the origin signatures of the notices held when the evidence
 * carries the agency key history (`agencyKeys`). Without it (an archive of
 * format 1, the API) every notice held is counted as not checked.
 */
export async function auditLogWithOrigins(input: AuditInput, onProgress?: Progress): Promise<AuditReport> {
  const report = auditLog(input, onProgress);
  const notices = input.notices ?? [];
  if (!input.agencyKeys) return { ...report, signaturesChecked: 0, signaturesNotChecked: notices.length };
  const r = await checkOriginSignatures({ entries: input.entries, notices, agencyKeys: input.agencyKeys });
  const problems = [...report.problems, ...r.problems].slice(0, 100);
  const bad = [report.firstBadEntry, ...r.problems.map((p) => p.index)].filter((i): i is number => i !== undefined);
  return {
    ...report,
    ok: report.ok && r.problems.length === 0,
    problems,
    firstBadEntry: bad.length ? Math.min(...bad) : undefined,
    signaturesChecked: r.checked,
    signaturesNotChecked: r.notChecked,
  };
}
