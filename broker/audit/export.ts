/**
 * Evidence collection for `liaison audit`: from NATS (the operator's export)
 * or from the REST API (an auditor with credentials). I/O only; the checks are
 * in verify.ts.
 */

import { Buffer } from 'node:buffer';

import type { StorePort, StreamState } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { CheckpointStore } from '../log/checkpoint-store.js';
import { parseCheckpoint, type PublicSigningJwk } from '../log/checkpoint.js';
import { consistencyProofAsync } from '../log/merkle.js';
import { TileStore } from '../log/tiles.js';
import { ENTRY_SIGNATURE_HEADER } from '../log/entry-signature.js';
import { decodeEntry } from '../log/entry.js';
import { isUuid } from '../core/ids.js';
import { REGISTRY_BUCKET } from '../registry/store.js';
import { openStoredNotice, type StorageKeyring } from '../vault/open.js';
import { COMPLAINT_KIND } from '../acks/complaint.js';
import { statementJws, storedStatement } from '../acks/recipient-statement.js';
import { ARCHIVE_FORMAT, type AuditArchive } from './archive.js';
import { readAgencyKeyHistory } from './key-history.js';
import type { AuditCheckpoint, AuditInput, HeldComplaint } from './verify.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

async function streamInfo(bus: StorePort, stream: string): Promise<StreamState> {
  const info = await bus.streamInfo(stream);
  if (!info) throw new Error(`stream ${stream} not found`);
  return info;
}

/**
 * Read everything an offline audit needs from NATS into an archive. The
 * signed notices and the complaints only with `notices`, the storage keys that
 * open them; `null` for an archive that will be written in clear, which must
 * not hold them (the CLI passes the keys only when it encrypts the archive to
 * the auditor). Required, so that no caller leaves the contents out by
 * forgetting them: verify would then count every notice as not fetched.
 */
export async function exportArchive(
  bus: StorePort,
  origin: string,
  brokerKeys: readonly PublicSigningJwk[],
  notices: StorageKeyring | null,
): Promise<AuditArchive> {
  const store = await CheckpointStore.open(bus, origin, brokerKeys);
  const tiles = await TileStore.open(bus);
  const reader = tiles.reader();

  const logInfo = await streamInfo(bus, STREAMS.log);
  const entries: AuditArchive['entries'] = [];
  await readEntries(bus, entries, 1, logInfo.lastSeq);

  const checkpoints: AuditArchive['checkpoints'] = [];
  let prevSize: number | undefined;
  let maxSize = 0;
  for await (const { note } of store.all()) {
    let size: number | undefined;
    try {
      size = parseCheckpoint(note).checkpoint.treeSize;
    } catch {
      size = undefined;
    }
    let proof: string[] = [];
    if (size !== undefined && prevSize !== undefined && prevSize < size && size <= logInfo.lastSeq) {
      proof = (await consistencyProofAsync(prevSize, size, reader)).map(hex);
    }
    checkpoints.push({ note, consistency_from_previous: proof });
    if (size !== undefined) {
      prevSize = size;
      maxSize = Math.max(maxSize, size);
    }
  }
  const leafHashes = (await tiles.leafHashes(0, maxSize)).map(hex);

  const held = notices ? await heldNotices(bus, notices, entries, logInfo.lastSeq) : undefined;
  // The agency key history: every revision the registry bucket still holds of every agency record.
  const registry = await bus.bucket(REGISTRY_BUCKET, { bindOnly: true });
  const agencyKeys = await readAgencyKeyHistory(registry);
  // Registry events (key changes), each committed to by a `registry` entry.
  const registryEvents: NonNullable<AuditArchive['registry_events']> = [];
  const rInfo = await bus.streamInfo(STREAMS.registryEvents).catch(() => null);
  for (let seq = rInfo?.firstSeq ?? 0; rInfo && seq > 0 && seq <= rInfo.lastSeq; seq++) {
    const m = await bus.getMessage(STREAMS.registryEvents, seq);
    if (m)
      registryEvents.push({
        event_id: m.subject.slice(m.subject.indexOf('.') + 1),
        jws: new TextDecoder().decode(m.data),
      });
  }
  const complaints = notices ? await heldComplaints(bus, notices) : undefined;
  // The archive covers the prefix of the log it read: what was stored for an entry beyond it is left out.
  const scope = entryScope(entries);
  return {
    format: ARCHIVE_FORMAT,
    origin,
    exported_at: new Date().toISOString(),
    broker_keys: [...brokerKeys],
    entries,
    checkpoints,
    leaf_hashes: leafHashes,
    ...(held ? { notices: held } : {}),
    agency_keys: agencyKeys,
    registry_events: registryEvents.filter((e) => scope.events.has(e.event_id)),
    ...(complaints ? { complaints: complaints.filter((c) => scope.complaints.has(`${c.notice_id}:${c.agency}`)) } : {}),
  };
}

/** LOG's messages `from`..`to` (stream sequences) appended to `entries`, each with its gateway signature. */
async function readEntries(bus: StorePort, entries: AuditArchive['entries'], from: number, to: number): Promise<void> {
  for (let seq = from; seq <= to; seq++) {
    const m = await bus.getMessage(STREAMS.log, seq);
    const signature = m?.header?.get(ENTRY_SIGNATURE_HEADER);
    if (m) entries.push({ index: seq - 1, entry: b64u(m.data), ...(signature ? { signature } : {}) });
  }
}

/**
 * Recipients' complaints, each committed to by a `complaint` entry (subject
 * complaints.<notice-id>.<agency>), opened (they are sealed under their
 * notice's data key: a complaint's detail may quote the notice, so, like the
 * notices, only an archive that will be encrypted carries them). Those of an
 * erased notice are gone; junk is left out (a finding), and verify reports
 * its entry's complaint as missing.
 */
async function heldComplaints(bus: StorePort, keys: StorageKeyring): Promise<NonNullable<AuditArchive['complaints']>> {
  const out: NonNullable<AuditArchive['complaints']> = [];
  for (let seq = 1; ;) {
    const m = await bus.nextMessage(STREAMS.acks, seq, 'complaints.*.*', 'complaints export');
    if (!m) break;
    seq = m.seq + 1;
    const stored = storedStatement(COMPLAINT_KIND, m);
    const held = stored && (await statementJws({ bus, storageKeys: keys }, COMPLAINT_KIND, m, stored.entry));
    if (stored && held && 'jws' in held)
      out.push({ notice_id: stored.entry.notice_id, agency: stored.entry.agency, jws: held.jws });
  }
  return out;
}

/** Rounds of reading on (below): each needs an erasure logged during the one before, so a few always suffice. */
const MAX_READ_ON_ROUNDS = 4;

/**
 * The contents of the notices `entries` commit to, opened (broker/vault/open.ts),
 * as NOTICES holds them now: an erased one is left out (verify names its erasure
 * event), and so is one that does not open (verify reports it missing).
 *
 * The entries were read first, so a notice erased since has no content here and
 * its `notice-erased` event lies beyond them; that would read as a notice gone
 * without a trace. So while a notice lacks its content and no entry read names
 * its erasure, LOG is read on to its end (its new notices' contents with it),
 * and the archive covers that longer prefix.
 */
async function heldNotices(
  bus: StorePort,
  keys: StorageKeyring,
  entries: AuditArchive['entries'],
  readTo: number,
): Promise<NonNullable<AuditArchive['notices']>> {
  let held = await readContents(bus, keys);
  for (let round = 0; round < MAX_READ_ON_ROUNDS && unaccounted(entries, held).length > 0; round++) {
    const last = (await streamInfo(bus, STREAMS.log)).lastSeq;
    if (last <= readTo) break;
    await readEntries(bus, entries, readTo + 1, last);
    readTo = last;
    held = await readContents(bus, keys);
  }
  const { notices } = entryScope(entries);
  return [...held].filter(([id]) => notices.has(id)).map(([notice_id, signed]) => ({ notice_id, signed }));
}

/** Every notice NOTICES holds that opens, by id (base64url of the signed bytes). */
async function readContents(bus: StorePort, keys: StorageKeyring): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const nInfo = await streamInfo(bus, STREAMS.notices);
  for (let seq = nInfo.firstSeq; seq > 0 && seq <= nInfo.lastSeq; seq++) {
    const m = await bus.getMessage(STREAMS.notices, seq);
    const id = m?.header?.get('Liaison-Notice-Id');
    if (!m || !id) continue;
    const opened = await openStoredNotice(bus, keys, id, m.data).catch((e: unknown) => {
      if ((e as { code?: string }).code === 'log-state-invalid') return null;
      throw e;
    });
    if (opened && opened.kind !== 'erased') out.set(id, b64u(opened.signed));
  }
  return out;
}

/**
 * What the entries commit to: notices (the value: a `notice-erased` entry names
 * it), registry events, and complaints (`<notice-id>:<agency>`).
 */
function entryScope(entries: AuditArchive['entries']) {
  const notices = new Map<string, boolean>();
  const events = new Set<string>();
  const complaints = new Set<string>();
  for (const { entry } of entries) {
    let e: ReturnType<typeof decodeEntry>;
    try {
      e = decodeEntry(Buffer.from(entry, 'base64url'));
    } catch {
      continue; // verify reports it
    }
    if (e.kind === 'notice' && !notices.has(e.notice_id)) notices.set(e.notice_id, false);
    if (e.kind === 'complaint') complaints.add(`${e.notice_id}:${e.agency}`);
    if (e.kind !== 'registry') continue;
    events.add(e.event_id);
    const named = (e.subject as { notice?: unknown }).notice;
    if (e.event === 'notice-erased' && typeof named === 'string') notices.set(named, true);
  }
  return { notices, events, complaints };
}

/** Notices the entries commit to with no content held and no erasure entry read. */
function unaccounted(entries: AuditArchive['entries'], held: ReadonlyMap<string, string>): string[] {
  return [...entryScope(entries).notices].filter(([id, erased]) => !erased && !held.has(id)).map(([id]) => id);
}

export type AuthedGet = (path: string) => Promise<{ status: number; json: Record<string, unknown> }>;

/**
 * Fetch the evidence from the REST API: every entry (paged), the newest
 * checkpoint, and – for each checkpoint the auditor saw before (`known`,
 * oldest first) – the consistency proof to the next, so that the replay also
 * proves the hub did not rewrite what it showed earlier.
 */
export async function fetchFromApi(
  get: AuthedGet,
  origin: string,
  brokerKeys: readonly PublicSigningJwk[],
  known: readonly string[] = [],
  onPage?: (done: number) => void,
): Promise<AuditInput & { latestNote: string }> {
  const cp = await get('/v1/log/checkpoint');
  if (cp.status !== 200) throw new Error(`GET /v1/log/checkpoint answered ${cp.status}`);
  const latestNote = String(cp.json.note);
  let size = Number(cp.json.tree_size);
  const entries: { index: number; bytes: Uint8Array; signature?: string }[] = [];
  // Every entry LOG holds, also beyond the newest checkpoint (entries not folded yet, or refused as forged): a
  // gateway that serves `log_size` also serves entry signatures, and each is checked.
  let entrySignatures = false;
  let start = 0;
  while (start < size || (start === 0 && size === 0)) {
    const page = await get(`/v1/log/entries?start=${start}&end=${Math.max(size, start + 1)}`);
    if (start === 0 && size === 0 && page.status === 400) break; // an empty log
    if (page.status !== 200) throw new Error(`GET /v1/log/entries answered ${page.status}`);
    const got = page.json.entries as { index: number; entry: string; signature?: unknown }[];
    if (!Array.isArray(got) || got.length === 0) throw new Error('the API returned an empty page');
    for (const e of got)
      entries.push({
        index: e.index,
        bytes: new Uint8Array(Buffer.from(e.entry, 'base64url')),
        ...(typeof e.signature === 'string' ? { signature: e.signature } : {}),
      });
    const logSize = page.json.log_size;
    if (typeof logSize === 'number' && Number.isSafeInteger(logSize)) {
      entrySignatures = true;
      size = Math.max(size, logSize);
    }
    start = Number(page.json.end);
    onPage?.(entries.length);
  }
  const notes = [...known, latestNote];
  const checkpoints: AuditCheckpoint[] = [];
  let prev: number | undefined;
  for (const note of notes) {
    let s: number | undefined;
    try {
      s = parseCheckpoint(note).checkpoint.treeSize;
    } catch {
      s = undefined;
    }
    let proof: Uint8Array[] = [];
    if (s !== undefined && prev !== undefined && prev < s) {
      const p = await get(`/v1/log/proof/consistency?first=${prev}&second=${s}`);
      if (p.status === 200) proof = (p.json.proof as string[]).map((h) => new Uint8Array(Buffer.from(h, 'hex')));
    }
    checkpoints.push({ note, consistencyFromPrevious: proof });
    if (s !== undefined) prev = s;
  }
  const complaints = await fetchComplaints(get, entries);
  // No notices: the API serves commitments, not contents (the report says so: noticesNotFetched).
  return { origin, brokerKeys, entries, entrySignatures, checkpoints, latestNote, complaints };
}

/**
 * The complaints the log's complaint entries commit to, as an auditor reads
 * them (GET /v1/notices/:id/complaints, role audit): one request per notice
 * complained about. A notice with none answers 404: auditLog then reports each
 * entry's complaint as missing.
 */
async function fetchComplaints(get: AuthedGet, entries: readonly { bytes: Uint8Array }[]): Promise<HeldComplaint[]> {
  const ids = new Set<string>();
  for (const e of entries) {
    try {
      const entry = decodeEntry(e.bytes);
      if (entry.kind === 'complaint' && isUuid(entry.notice_id)) ids.add(entry.notice_id);
    } catch {
      // auditLog reports malformed entries.
    }
  }
  const held: HeldComplaint[] = [];
  for (const id of ids) {
    const r = await get(`/v1/notices/${id}/complaints`);
    if (r.status === 404) continue;
    if (r.status !== 200 || !Array.isArray(r.json.complaints))
      throw new Error(`GET /v1/notices/${id}/complaints answered ${r.status}`);
    for (const c of r.json.complaints as { agency?: unknown; complaint?: unknown }[])
      if (typeof c.agency === 'string' && typeof c.complaint === 'string')
        held.push({ noticeId: id, agency: c.agency, jws: c.complaint });
  }
  return held;
}
