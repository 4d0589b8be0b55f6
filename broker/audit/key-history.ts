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
 *    same header/packet rules ingest applies (adapters/jose, adapters/openpgp);
 *  - that key belongs to the entry's origin agency;
 *  - the key was valid at the entry's `received_at` (keyStateAt): a key rotated
 *    or revoked LATER still verifies what it signed while it was valid.
 *
 * Pure: the evidence comes in as data (no NATS here, except
 * `readAgencyKeyHistory`, which only takes a KV-like reader).
 */

import { readMessage } from 'openpgp';

import { verifyCompactJws } from '../../adapters/jose/verify-jws.js';
import { strictConfig } from '../../adapters/openpgp/decrypt-message.js';
import { DEFAULT_OPENPGP_LIMITS } from '../../adapters/openpgp/limits.js';
import { verifyMessage } from '../../adapters/openpgp/verify-message.js';
import type { ResolvedSigner } from '../core/envelope.js';
import { LiaisonError } from '../core/errors.js';
import { importKey, signatureAlgsFor } from '../keys/jwk.js';
import { createOpenPgpSignerResolver } from '../keys/openpgp-signers.js';
import { decodeEntry, type NoticeLogEntry } from '../log/entry.js';
import { keyStateAt, RegistrySnapshot, type Agency, type AgencyKey, type OpenPgpAgencyKey, type RegistryJwk } from '../registry/model.js';
import { auditLog, type AuditEntry, type AuditInput, type AuditProblem, type AuditReport, type Progress } from './verify.js';

/** One key as the registry history knew it (the archive's `agency_keys`). */
export interface HistoricalAgencyKey {
  agency: string;
  kid: string;
  use: 'sig' | 'enc';
  format: 'jose' | 'openpgp';
  /** JOSE keys: the public JWK. */
  jwk?: RegistryJwk;
  /** OpenPGP keys: the armored certificate. */
  armored?: string;
  status: 'active' | 'revoked';
  not_before?: string;
  not_after?: string;
  revoked_at?: string;
}

/** A revision of an `agency.<id>` registry record (its JSON value); DEL/PURGE markers are left out by the reader. */
export interface AgencyRevision {
  agencyId: string;
  record: unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const optStr = (v: unknown) => (typeof v === 'string' ? v : undefined);
const material = (k: HistoricalAgencyKey) => (k.format === 'openpgp' ? `pgp:${k.armored ?? ''}` : `jwk:${JSON.stringify([k.jwk?.kty, k.jwk?.crv, k.jwk?.x, k.jwk?.y])}`);

function toHistorical(agency: string, k: unknown, format: 'jose' | 'openpgp'): HistoricalAgencyKey | undefined {
  if (!isObj(k) || typeof k.kid !== 'string' || (k.use !== 'sig' && k.use !== 'enc') || (k.status !== 'active' && k.status !== 'revoked')) return undefined;
  const out: HistoricalAgencyKey = { agency, kid: k.kid, use: k.use, format, status: k.status };
  if (format === 'jose') {
    if (!isObj(k.jwk)) return undefined;
    const j = k.jwk;
    out.jwk = Object.fromEntries(['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'].filter((f) => typeof j[f] === 'string').map((f) => [f, j[f]])) as unknown as RegistryJwk;
  } else {
    if (typeof k.armored !== 'string') return undefined;
    out.armored = k.armored;
  }
  for (const f of ['not_before', 'not_after', 'revoked_at'] as const) {
    const v = optStr(k[f]);
    if (v !== undefined) out[f] = v;
  }
  return out;
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
    const keys = [
      ...(Array.isArray(record.keys) ? record.keys.map((k) => toHistorical(agencyId, k, 'jose')) : []),
      ...(Array.isArray(record.openpgp_keys) ? record.openpgp_keys.map((k) => toHistorical(agencyId, k, 'openpgp')) : []),
    ];
    for (const k of keys) {
      if (!k) continue;
      const id = JSON.stringify([k.agency, k.kid, material(k)]);
      byId.delete(id); // re-insert: the map's order is that of the newest revision
      byId.set(id, k);
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
    if (!isObj(k) || typeof k.agency !== 'string' || (k.format !== 'jose' && k.format !== 'openpgp')) throw fail(`agency_keys[${i}] must name an agency and a format`);
    const h = toHistorical(k.agency, k, k.format);
    if (!h) throw fail(`agency_keys[${i}] is not a key record`);
    return h;
  });
}

export type OriginProblemCode = 'notice-signature-invalid' | 'notice-signer-mismatch' | 'notice-signer-unknown' | 'notice-signer-wrong-agency' | 'notice-signer-not-valid';

export interface OriginCheckInput {
  entries: readonly AuditEntry[];
  notices: readonly { noticeId: string; signed: Uint8Array }[];
  agencyKeys: readonly HistoricalAgencyKey[];
}

export interface OriginCheckResult {
  /** Notices whose origin signature was verified (good or bad). */
  checked: number;
  /** Notices that could not be checked (no entry for them, an unknown format). */
  notChecked: number;
  problems: (AuditProblem & { code: OriginProblemCode })[];
}

/** A key of the history as the registry snapshot model knows it (for the OpenPGP resolver). */
function historySnapshot(keys: readonly HistoricalAgencyKey[]): RegistrySnapshot {
  const agencies = new Map<string, Agency>();
  for (const k of keys) {
    if (k.format !== 'openpgp' || k.use !== 'sig') continue;
    const a = agencies.get(k.agency) ?? { id: k.agency, country: '', name: k.agency, roles: [], keys: [], openpgp_keys: [] };
    const rec: OpenPgpAgencyKey = { kid: k.kid, use: 'sig', format: 'openpgp', armored: k.armored ?? '', status: k.status };
    for (const f of ['not_before', 'not_after', 'revoked_at'] as const) if (k[f] !== undefined) rec[f] = k[f];
    a.openpgp_keys!.push(rec);
    agencies.set(k.agency, a);
  }
  return new RegistrySnapshot(agencies.values(), []);
}

const validity = (k: Pick<AgencyKey, 'status' | 'not_before' | 'not_after' | 'revoked_at'>) =>
  [k.status, k.revoked_at && `revoked_at ${k.revoked_at}`, k.not_before && `not_before ${k.not_before}`, k.not_after && `not_after ${k.not_after}`].filter(Boolean).join(', ');

/**
 * Verify the origin signature of every notice still held against the key
 * history. Sequential and deterministic; problems are in log order.
 */
/** Origin signatures checked at once (JOSE): enough to keep every core's share of libuv's pool busy. */
const JOSE_BATCH = 64;

export async function checkOriginSignatures(input: OriginCheckInput): Promise<OriginCheckResult> {
  const problems: OriginCheckResult['problems'] = [];
  const entryOf = new Map<string, { index: number; entry: NoticeLogEntry }>();
  for (let pos = 0; pos < input.entries.length; pos++) {
    try {
      const e = decodeEntry(input.entries[pos]!.bytes) as Partial<NoticeLogEntry>;
      if (e.kind === 'notice' && typeof e.notice_id === 'string' && !entryOf.has(e.notice_id)) entryOf.set(e.notice_id, { index: pos, entry: e as NoticeLogEntry });
    } catch {
      // auditLog reports malformed entries.
    }
  }
  const joseByKid = new Map<string, HistoricalAgencyKey[]>();
  for (const k of input.agencyKeys) {
    if (k.format !== 'jose') continue;
    joseByKid.set(k.kid, [...(joseByKid.get(k.kid) ?? []), k]);
  }
  const imported = new Map<string, Promise<ResolvedSigner>>();
  let pgpAt = new Date(0);
  const pgpResolver = createOpenPgpSignerResolver(
    (() => {
      const snap = historySnapshot(input.agencyKeys);
      return () => snap;
    })(),
    () => pgpAt,
  );
  const pgpCfg = strictConfig(DEFAULT_OPENPGP_LIMITS);

  let checked = 0;
  let notChecked = 0;
  const ordered = input.notices
    .map((n) => ({ n, e: entryOf.get(n.noticeId) }))
    .sort((a, b) => (a.e?.index ?? Number.MAX_SAFE_INTEGER) - (b.e?.index ?? Number.MAX_SAFE_INTEGER));
  /** One notice's problems (none when its origin signature holds). */
  const checkOne = async (n: (typeof input.notices)[number], index: number, entry: NoticeLogEntry): Promise<OriginCheckResult['problems']> => {
    const found: OriginCheckResult['problems'] = [];
    const at = new Date(entry.received_at);
    const where = `notice ${n.noticeId} (entry ${index})`;
    const add = (code: OriginProblemCode, message: string) => void found.push({ code, index, message: `${where}: ${message}` });
    if (Number.isNaN(at.getTime())) {
      add('notice-signer-not-valid', `received_at ${JSON.stringify(entry.received_at)} is not a time`);
      return found;
    }

    // The key the entry names must be one key, of the origin agency, valid at received_at.
    if (entry.format === 'jose') {
      const candidates = joseByKid.get(entry.signer_kid) ?? [];
      if (candidates.length === 0) {
        add('notice-signer-unknown', `signer key ${entry.signer_kid} is not in the agency key history`);
        return found;
      }
      if (candidates.length > 1) {
        add('notice-signer-unknown', `signer key ${entry.signer_kid} is claimed by ${candidates.length} different keys in the history (${[...new Set(candidates.map((c) => c.agency))].join(', ')}): it names none`);
        return found;
      }
      const key = candidates[0]!;
      if (key.agency !== entry.origin?.agency) {
        add('notice-signer-wrong-agency', `signer key ${key.kid} belongs to ${key.agency}, not to the origin agency ${String(entry.origin?.agency)}`);
        return found;
      }
      const state = key.use === 'sig' ? keyStateAt(key, at) : 'not a signing key';
      if (state !== 'active') {
        add('notice-signer-not-valid', `signer key ${key.kid} was ${state} at received_at ${entry.received_at} (${validity(key)})`);
        return found;
      }
      // The stored JWS: ingest's header rules; its kid must be the entry's key, the signature that key's.
      const resolve = async (kid: string): Promise<ResolvedSigner> => {
        if (kid !== key.kid) throw new LiaisonError('signature-invalid', { detail: `the JWS names key ${kid}, the log entry ${key.kid}` });
        let p = imported.get(kid);
        if (!p) {
          const algorithms = signatureAlgsFor(key.jwk ?? {});
          p = importKey(key.jwk as Parameters<typeof importKey>[0], algorithms[0] ?? 'none').then((k) => ({ kid, agencyId: key.agency, key: k, algorithms }));
          imported.set(kid, p);
        }
        return p;
      };
      try {
        await verifyCompactJws(n.signed, resolve);
      } catch (err) {
        const detail = (err as Error).message;
        add(/names key/.test(String(detail)) ? 'notice-signer-mismatch' : 'notice-signature-invalid', `the stored JWS does not verify with ${key.kid}: ${detail}`);
      }
    } else {
      // OpenPGP: the adapter's own verifier, with a resolver over the history at received_at (one at a time: pgpAt).
      pgpAt = at;
      try {
        const message = await readMessage({ armoredMessage: new TextDecoder().decode(n.signed), config: pgpCfg });
        const { signer } = await verifyMessage(message as Parameters<typeof verifyMessage>[0], pgpResolver, at, pgpCfg);
        if (signer.kid !== entry.signer_kid) add('notice-signer-mismatch', `the OpenPGP message is signed by ${signer.kid}, the log entry names ${entry.signer_kid}`);
        else if (signer.agencyId !== entry.origin?.agency) add('notice-signer-wrong-agency', `signer key ${signer.kid} belongs to ${signer.agencyId}, not to the origin agency ${String(entry.origin?.agency)}`);
      } catch (err) {
        const code = err instanceof LiaisonError ? err.code : undefined;
        const detail = (err as Error).message;
        add(code === 'key-unknown' ? 'notice-signer-unknown' : code === 'key-revoked' ? 'notice-signer-not-valid' : 'notice-signature-invalid', `the stored OpenPGP message does not verify at received_at ${entry.received_at}: ${detail}`);
      }
    }
    return found;
  };

  // JOSE checks run JOSE_BATCH at a time (WebCrypto verifies on libuv's pool, so on every core); OpenPGP ones one by
  // one. Problems are reported in log order whatever order the checks finish in.
  const results: Promise<OriginCheckResult['problems']>[] = [];
  let inFlight: Promise<unknown>[] = [];
  for (const { n, e } of ordered) {
    if (!e || (e.entry.format !== 'jose' && e.entry.format !== 'openpgp')) {
      notChecked++; // no entry: auditLog reports it (notice-not-in-log)
      continue;
    }
    checked++;
    const run = checkOne(n, e.index, e.entry);
    results.push(run);
    if (e.entry.format === 'jose') {
      inFlight.push(run);
      if (inFlight.length < JOSE_BATCH) continue;
    }
    // A full batch, or an OpenPGP check (which must run alone): wait for everything started.
    await Promise.all(inFlight);
    inFlight = [];
    await run;
  }
  problems.push(...(await Promise.all(results)).flat());
  return { checked, notChecked, problems };
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
