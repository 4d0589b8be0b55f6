/**
 * The auditor's replay of the signed log. Pure: the evidence comes in as data
 * (an archive, or what the CLI fetched from the API); nothing here fetches.
 *
 * Checks, in order:
 *  1. entries: positions 0.. without a gap or a repeat, each the canonical JCS
 *     encoding of an entry, no notice id twice;
 *  2. checkpoints: signature by a key of the broker's key history, sizes never
 *     going back, one root per size (else a fork), each consistent with the
 *     one before (RFC 9162 2.1.4 proof), and each root equal to the root
 *     recomputed from the entries (RFC 9162 2.1.1);
 *  3. when a root does not match and the evidence carries the log's leaf
 *     hashes (from the tiles), and those are themselves authenticated by the
 *     signed roots, the first entry whose leaf differs is named exactly;
 *  4. every notice still held: SHA-256 of its signed bytes equals its entry's
 *     commitment. A notice whose content the evidence lacks is counted, not
 *     a fault: "erased by event E" when a later, genuine `notice-erased`
 *     registry entry names it (broker/erasure/), else as missing content.
 *  5. entry signatures (when the evidence carries them): every entry's
 *     gateway signature (broker/log/entry-signature.ts) verifies over its
 *     bytes with a key of the broker's key history. Entries written before
 *     entry signatures are accepted unsigned only as the log's leading prefix,
 *     and only as far as a valid checkpoint covers it; any other unsigned entry
 *     is `entry-unsigned`, a bad one `entry-signature-invalid`: a forged entry,
 *     never counted as an erased notice.
 *  6. complaints (when the evidence holds them): each held complaint JWS has
 *     its `complaint` entry and matches its commitment, and each complaint
 *     entry has its JWS (ACKS is append-only). Their signatures by the
 *     recipient's key are checked with the key history (complaints.ts).
 *
 * Every problem names what is wrong: an entry index, a checkpoint position.
 */

import { openRegistryEvent } from '../admin/registry-event.js';
import type { CodeOf } from '../core/errors.js';
import { sha256Hex } from '../core/sha256.js';
import { Buffer } from 'node:buffer';

import { CheckpointError, CheckpointVerifier, type Checkpoint, type PublicSigningJwk } from '../log/checkpoint.js';
import { CompactRange } from '../log/compact-range.js';
import { decodeEntry, encodeEntry, LOG_ENTRY_KINDS } from '../log/entry.js';
import { EntrySignatureVerifier } from '../log/entry-signature.js';
import { checkEntrySignature, type EntrySignatureOutcome } from './entry-signature-check.js';
import { hashEqual, leafHash, verifyConsistency } from '../log/merkle.js';
import type { HistoricalAgencyKey } from './key-history.js';

/** Every finding of an audit: its codes are in broker/core/errors.ts. */
export type AuditProblemCode = CodeOf<'audit'>;

export interface AuditProblem {
  code: AuditProblemCode;
  /** Log index of the entry concerned. */
  index?: number;
  /** Position (0-based, publication order) of the checkpoint concerned. */
  checkpoint?: number;
  message: string;
}

export interface AuditEntry {
  /** The index the evidence claims for this entry. */
  index: number;
  bytes: Uint8Array;
  /** The entry's gateway signature (compact detached JWS), when the evidence has one. */
  signature?: string | undefined;
}

export interface AuditCheckpoint {
  note: string;
  /** Consistency proof from the checkpoint before it (publication order); absent for the first. */
  consistencyFromPrevious?: readonly Uint8Array[];
}

export interface AuditInput {
  origin: string;
  /** The broker's signing keys, current and past (its key history). */
  brokerKeys: readonly PublicSigningJwk[];
  /** Entries in log order. */
  entries: readonly AuditEntry[];
  /** Whether the evidence carries entry signatures (archive format 3, the API): each is checked. Absent or false: not checked. */
  entrySignatures?: boolean;
  /** Checkpoints in publication order. */
  checkpoints: readonly AuditCheckpoint[];
  /** Leaf hashes as stored in the tiles, index = position (optional; used to name a changed entry exactly). */
  leafHashes?: readonly Uint8Array[];
  /** Notices still held (the rest were erased under retention); absent when the evidence has no contents at all (API mode). */
  notices?: readonly { noticeId: string; signed: Uint8Array }[];
  /** Registry events still held (REGISTRY_EVENTS): each is checked against its `registry` entry and the broker key history. */
  registryEvents?: readonly { eventId: string; jws: string }[];
  /** Recipients' complaints held (ACKS, archive format 4): each is checked against its `complaint` entry; absent when the evidence has none (API, older archives). */
  complaints?: readonly HeldComplaint[];
  /** The agency key history (every key the registry ever listed); origin signatures are checked by auditLogWithOrigins when present. */
  agencyKeys?: readonly HistoricalAgencyKey[];
}

/** A recipient's complaint as held: the compact JWS exactly as received, under the notice and agency of its subject. */
export interface HeldComplaint {
  noticeId: string;
  agency: string;
  jws: string;
}

export interface AuditReport {
  ok: boolean;
  entries: number;
  checkpoints: number;
  checkpointsValid: number;
  /** Size and root of the newest valid checkpoint that matched the entries. */
  verifiedTreeSize: number;
  verifiedRoot: string | undefined;
  noticesChecked: number;
  /** Notice entries whose content the evidence lacks: erased under retention (0 when no contents were given). */
  noticesErased: number;
  /** Notice entries not checked against contents because the evidence held none (API mode); absent when contents were given. */
  noticesNotFetched?: number;
  /**
   * Notices a later, genuine `notice-erased` entry names: erased by that event (its log entry stays, its content is
   * gone). With contents in the evidence, only those whose content is gone; without (API mode), every one named.
   */
  erasures: { notice_id: string; event_id: string; index: number }[];
  /** Of noticesErased, those no erasure event names: content missing without a logged erasure, each a `notice-content-missing` problem. */
  noticesMissing: number;
  problems: AuditProblem[];
  /** The first entry found changed, dropped or reordered, if it could be named. */
  firstBadEntry: number | undefined;
  /** Complaint entries in the log. */
  complaints: number;
  /** Complaints held and checked against their entries (commitment); absent when the evidence holds none (API, archives before format 4). */
  complaintsChecked?: number;
  /** Complaint signatures verified against the recipient's key history (auditLogWithOrigins); absent when not checked. */
  complaintSignaturesChecked?: number;
  /** Registry events checked against their entries (commitment, id, broker signature); absent when none were given. */
  registryEventsChecked?: number;
  /** Origin signatures verified against the key history (auditLogWithOrigins); absent when not checked at all. */
  signaturesChecked?: number;
  /** Notices held whose origin signature could not be checked (no key history in the evidence, no entry). */
  signaturesNotChecked?: number;
  /** Entries whose gateway signature verified; absent when the evidence carries no entry signatures. */
  entriesSigned?: number;
  /** Entries accepted unsigned: the leading prefix written before entry signatures, under a valid checkpoint. */
  entriesUnsignedLegacy?: number;
}

export type Progress = (done: number, total: number) => void;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const MAX_PROBLEMS = 100;

/**
 * Per-entry work done before the scan, one element per entry in order (verify-all-cores.ts does it on all cores):
 * the entries' gateway signatures checked, their leaf hashes, and their canonical decoding (`null`: not the
 * canonical encoding of an entry). What is absent is done here, in turn.
 */
export interface PreparedEntries {
  signatures?: readonly EntrySignatureOutcome[];
  leaves?: readonly Uint8Array[];
  decoded?: readonly (DecodedEntry | null)[];
}

type DecodedEntry = ReturnType<typeof decodeEntry>;

/** An entry's leaf hash and canonical decoding (null when its bytes are not the canonical encoding of an entry). */
export function prepareEntry(bytes: Uint8Array): { leaf: Uint8Array; decoded: DecodedEntry | null } {
  return { leaf: leafHash(bytes), decoded: canonicalEntry(bytes) };
}

export function auditLog(input: AuditInput, onProgress?: Progress, prepared: PreparedEntries = {}): AuditReport {
  const problems: AuditProblem[] = [];
  const add: AddProblem = (p) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  // The steps add their problems in this order: it is the report's order.
  const scan = scanEntries(input, add, onProgress, prepared);
  const valid = verifyCheckpoints(input, add);
  const entriesUnsignedLegacy = settleUnsignedPrefix(scan, valid, input.entries, add);
  const roots = recomputeRoots(valid, scan.leaves, input.leafHashes, add);
  if (roots.firstMismatch) nameFirstChangedEntry(roots.firstMismatch, roots, scan.leaves, input.leafHashes, add);
  const held = checkHeldNotices(input.notices ?? [], scan.byNotice, add);
  const complaintsChecked = input.complaints
    ? checkHeldComplaints(input.complaints, scan.complaints, scan.erasures, add)
    : 0;
  const erasures = erasedByEvent(scan, input.notices);
  if (input.notices) reportMissingContents(scan, input.notices, erasures, add);
  const registryEventsChecked = checkHeldRegistryEvents(
    input.registryEvents ?? [],
    scan.registryEvents,
    input.brokerKeys,
    add,
  );

  const entryIndices = problems
    .filter((p) => p.code.startsWith('entry') && p.code !== 'entries-do-not-match' && p.index !== undefined)
    .map((p) => p.index!);
  const lastGood = roots.lastGood;
  const newest = [...valid].reverse().find((v) => lastGood && v.cp.treeSize === lastGood.size);
  return {
    ok: problems.length === 0,
    entries: scan.leaves.length,
    checkpoints: input.checkpoints.length,
    checkpointsValid: valid.length,
    verifiedTreeSize: lastGood?.size ?? 0,
    verifiedRoot: newest ? hex(newest.cp.rootHash) : undefined,
    noticesChecked: held.checked,
    // A forged entry's commitment is not a notice: never counted as erased, nor as not fetched.
    noticesErased: input.notices ? byNoticeGenuine(scan.byNotice) - (held.checked - held.forged) : 0,
    ...(input.notices ? {} : { noticesNotFetched: byNoticeGenuine(scan.byNotice) }),
    erasures,
    noticesMissing: input.notices ? byNoticeGenuine(scan.byNotice) - (held.checked - held.forged) - erasures.length : 0,
    problems,
    firstBadEntry: entryIndices.length ? Math.min(...entryIndices) : undefined,
    complaints: scan.complaints.size,
    ...(input.complaints ? { complaintsChecked } : {}),
    ...(input.registryEvents ? { registryEventsChecked } : {}),
    ...(scan.signatures ? { entriesSigned: scan.signatures.signed, entriesUnsignedLegacy } : {}),
  };
}

type AddProblem = (p: AuditProblem) => void;

/** A notice entry, by notice id: where it is and what it commits to; `forged` when its gateway signature fails. */
interface NoticeCommitment {
  index: number;
  sha256: string;
  forged?: boolean;
}

/** What one pass over the entries found (steps 1 and 5). */
interface EntryScan {
  leaves: Uint8Array[];
  byNotice: Map<string, NoticeCommitment>;
  registryEvents: Map<string, { index: number; sha256: string; signerKid: string }>;
  /** Complaint entries, by `<notice-id>:<agency>`. */
  complaints: Map<string, { index: number; sha256: string }>;
  /** Genuine `notice-erased` entries, by the notice they name (the first). */
  erasures: Map<string, { eventId: string; index: number }>;
  /** Entry signatures, when the evidence carries them. */
  signatures: EntrySignatureScan | undefined;
}

interface EntrySignatureScan {
  verifier: EntrySignatureVerifier;
  signed: number;
  seenSigned: boolean;
  /** Unsigned entries before the first signed one: decided once the checkpoints are known. */
  unsignedPrefix: number[];
  forged: Set<number>;
}

/** Step 1 (with 5 in the same pass): positions, entry signatures, canonical encoding, duplicates by kind. */
function scanEntries(
  input: AuditInput,
  add: AddProblem,
  onProgress: Progress | undefined,
  prepared: PreparedEntries,
): EntryScan {
  const { signatures: outcomes, leaves, decoded } = prepared;
  for (const list of [outcomes, leaves, decoded])
    if (list && list.length !== input.entries.length) throw new RangeError('prepared entries: one per entry is needed');
  const scan: EntryScan = {
    leaves: [],
    byNotice: new Map(),
    registryEvents: new Map(),
    complaints: new Map(),
    erasures: new Map(),
    signatures: input.entrySignatures
      ? {
          verifier: new EntrySignatureVerifier(input.brokerKeys),
          signed: 0,
          seenSigned: false,
          unsignedPrefix: [],
          forged: new Set(),
        }
      : undefined,
  };
  const acks = new Map<string, number>();
  let expected = 0;
  const total = input.entries.length;
  for (let pos = 0; pos < total; pos++) {
    const e = input.entries[pos]!;
    expected = checkEntryIndex(e.index, pos, expected, add) + 1;
    scan.leaves.push(leaves?.[pos] ?? leafHash(e.bytes));
    if (scan.signatures)
      settleEntrySignature(
        scan.signatures,
        outcomes?.[pos] ?? checkEntrySignature(scan.signatures.verifier, e.bytes, e.signature),
        pos,
        add,
      );
    const entry = decoded ? decoded[pos] : canonicalEntry(e.bytes);
    if (!entry) add({ code: 'entry-malformed', index: pos, message: `entry ${pos} is not a canonical log entry` });
    if (entry) indexEntryByKind(entry, pos, scan, acks, add);
    if (onProgress && (pos % 1024 === 0 || pos === total - 1)) onProgress(pos + 1, total);
  }
  return scan;
}

/** The index the entry at `pos` stands for: the one claimed after a gap, else the one expected (reporting the gap or the disorder). */
function checkEntryIndex(claimed: number, pos: number, expected: number, add: AddProblem): number {
  if (claimed === expected) return expected;
  if (Number.isSafeInteger(claimed) && claimed > expected) {
    add({
      code: 'entry-missing',
      index: expected,
      message: `entry ${expected} is missing (the next entry given is ${claimed})`,
    });
    return claimed;
  }
  add({
    code: 'entry-out-of-order',
    index: expected,
    message: `entry at position ${pos} claims index ${claimed} where ${expected} was expected`,
  });
  return expected;
}

/** Step 5: the entry's gateway signature; an unsigned entry before any signed one waits for the checkpoints, any other failure is a forged entry. */
function settleEntrySignature(
  sigs: EntrySignatureScan,
  outcome: EntrySignatureOutcome,
  pos: number,
  add: AddProblem,
): void {
  if (outcome.ok) {
    sigs.signed++;
    sigs.seenSigned = true;
    return;
  }
  if (outcome.code === 'entry-unsigned' && !sigs.seenSigned) {
    sigs.unsignedPrefix.push(pos);
    return;
  }
  sigs.forged.add(pos);
  add({
    code: outcome.code,
    index: pos,
    message:
      outcome.code === 'entry-unsigned'
        ? `entry ${pos} carries no gateway signature, after signed entries: a forged entry`
        : `entry ${pos} is forged: ${outcome.message}`,
  });
}

/** The entry, when its bytes are the canonical encoding of one; else null. */
function canonicalEntry(bytes: Uint8Array): DecodedEntry | null {
  try {
    const entry = decodeEntry(bytes);
    return Buffer.compare(Buffer.from(encodeEntry(entry)), Buffer.from(bytes)) === 0 ? entry : null;
  } catch {
    return null;
  }
}

/** One entry per read receipt, per complaint, per registry event and per notice; an unknown kind is malformed. */
function indexEntryByKind(
  entry: ReturnType<typeof decodeEntry>,
  pos: number,
  scan: EntryScan,
  acks: Map<string, number>,
  add: AddProblem,
): void {
  if (!(LOG_ENTRY_KINDS as readonly string[]).includes(String(entry.kind))) {
    add({ code: 'entry-malformed', index: pos, message: `entry ${pos} has an unknown kind` });
  } else if (entry.kind === 'ack') {
    // A read receipt: one per notice and recipient.
    const key = `${String(entry.notice_id)}:${String(entry.agency)}`;
    if (acks.has(key))
      add({
        code: 'entry-duplicate-ack',
        index: pos,
        message: `entry ${pos} repeats the read receipt of ${entry.agency} for notice ${entry.notice_id} (first at ${acks.get(key)})`,
      });
    else acks.set(key, pos);
  } else if (entry.kind === 'complaint') {
    // A recipient's complaint: one per notice and recipient.
    const key = `${String(entry.notice_id)}:${String(entry.agency)}`;
    if (scan.complaints.has(key))
      add({
        code: 'entry-duplicate-complaint',
        index: pos,
        message: `entry ${pos} repeats the complaint of ${entry.agency} about notice ${entry.notice_id} (first at ${scan.complaints.get(key)!.index})`,
      });
    else scan.complaints.set(key, { index: pos, sha256: String(entry.sha256) });
  } else if (entry.kind === 'registry') {
    // A registry change (key added, rotated, revoked): one entry per event.
    const key = String(entry.event_id);
    if (scan.registryEvents.has(key))
      add({
        code: 'entry-duplicate-event',
        index: pos,
        message: `entry ${pos} repeats registry event ${key} (first at ${scan.registryEvents.get(key)!.index})`,
      });
    else
      scan.registryEvents.set(key, { index: pos, sha256: String(entry.sha256), signerKid: String(entry.signer_kid) });
    const notice = (entry.subject as { notice?: unknown } | undefined)?.notice;
    // A forged entry never erases anything.
    if (
      entry.event === 'notice-erased' &&
      typeof notice === 'string' &&
      !scan.signatures?.forged.has(pos) &&
      !scan.erasures.has(notice)
    )
      scan.erasures.set(notice, { eventId: key, index: pos });
  } else if (entry.kind === 'notice' && typeof entry.notice_id === 'string' && scan.signatures?.forged.has(pos)) {
    // A forged entry: its commitment is still checked against a held notice, but it is never an erased notice nor a duplicate.
    if (!scan.byNotice.has(entry.notice_id))
      scan.byNotice.set(entry.notice_id, { index: pos, sha256: String(entry.sha256), forged: true });
  } else if (entry.kind === 'notice' && typeof entry.notice_id === 'string') {
    if (scan.byNotice.has(entry.notice_id))
      add({
        code: 'entry-duplicate-notice',
        index: pos,
        message: `entry ${pos} repeats notice ${entry.notice_id} (first at ${scan.byNotice.get(entry.notice_id)!.index})`,
      });
    else scan.byNotice.set(entry.notice_id, { index: pos, sha256: String(entry.sha256) });
  }
}

/** A checkpoint that verifies, with its position in publication order. */
interface ValidCheckpoint {
  pos: number;
  cp: Checkpoint;
}

/** Step 2: each checkpoint's signature, then forks (one root per size) and order against the one before. */
function verifyCheckpoints(input: AuditInput, add: AddProblem): ValidCheckpoint[] {
  const verifier = checkpointVerifier(input, add);
  const valid: ValidCheckpoint[] = [];
  const rootBySize = new Map<number, { pos: number; root: Uint8Array }>();
  if (verifier) {
    input.checkpoints.forEach((c, pos) => {
      const cp = openCheckpoint(verifier, c.note, pos, add);
      if (!cp) return;
      checkFork(rootBySize, cp, pos, add);
      const prev = valid.at(-1);
      if (prev) checkGrowth(prev, { pos, cp }, c.consistencyFromPrevious ?? [], add);
      valid.push({ pos, cp });
    });
  }
  if (valid.length === 0)
    add({ code: 'no-valid-checkpoint', message: 'no checkpoint verifies: nothing anchors the log' });
  return valid;
}

function checkpointVerifier(input: AuditInput, add: AddProblem): CheckpointVerifier | undefined {
  try {
    return new CheckpointVerifier(input.origin, input.brokerKeys);
  } catch (e) {
    add({ code: 'checkpoint-signature-invalid', message: `no usable broker key: ${(e as Error).message}` });
    return undefined;
  }
}

function openCheckpoint(
  verifier: CheckpointVerifier,
  note: string,
  pos: number,
  add: AddProblem,
): Checkpoint | undefined {
  try {
    return verifier.verify(note).checkpoint;
  } catch (e) {
    const code = e instanceof CheckpointError ? e.code : 'checkpoint-malformed';
    add({ code, checkpoint: pos, message: `checkpoint #${pos}: ${(e as Error).message}` });
    return undefined;
  }
}

/** Two signed roots for one size are a fork; the first root seen for a size is the one kept. */
function checkFork(
  rootBySize: Map<number, { pos: number; root: Uint8Array }>,
  cp: Checkpoint,
  pos: number,
  add: AddProblem,
): void {
  const seen = rootBySize.get(cp.treeSize);
  if (seen && !hashEqual(seen.root, cp.rootHash)) {
    add({
      code: 'checkpoint-fork',
      checkpoint: pos,
      message: `checkpoints #${seen.pos} and #${pos} both sign size ${cp.treeSize} with different roots (a fork)`,
    });
  } else if (!seen) rootBySize.set(cp.treeSize, { pos, root: cp.rootHash });
}

/** A checkpoint never shrinks the log, and a larger one proves it extends the one before (RFC 9162 2.1.4). */
function checkGrowth(
  prev: ValidCheckpoint,
  next: ValidCheckpoint,
  proof: readonly Uint8Array[],
  add: AddProblem,
): void {
  const [p, cp, pos] = [prev.cp, next.cp, next.pos];
  if (cp.treeSize < p.treeSize) {
    add({
      code: 'checkpoint-rollback',
      checkpoint: pos,
      message: `checkpoint #${pos} (size ${cp.treeSize}) is smaller than #${prev.pos} before it (size ${p.treeSize})`,
    });
  } else if (cp.treeSize > p.treeSize && !verifyConsistency(p.treeSize, cp.treeSize, proof, p.rootHash, cp.rootHash)) {
    add({
      code: 'checkpoint-inconsistent',
      checkpoint: pos,
      message: `checkpoint #${pos} (size ${cp.treeSize}) is not consistent with #${prev.pos} (size ${p.treeSize})`,
    });
  }
}

/** Step 5 (end): unsigned leading entries were written before entry signatures only if a valid checkpoint covers them; the others are forged. */
function settleUnsignedPrefix(
  scan: EntryScan,
  valid: readonly ValidCheckpoint[],
  entries: readonly AuditEntry[],
  add: AddProblem,
): number {
  if (!scan.signatures) return 0;
  const covered = valid.reduce((m, v) => Math.max(m, v.cp.treeSize), 0);
  let legacy = 0;
  for (const pos of scan.signatures.unsignedPrefix) {
    if (pos < covered) {
      legacy++;
      continue;
    }
    scan.signatures.forged.add(pos);
    add({
      code: 'entry-unsigned',
      index: pos,
      message: `entry ${pos} carries no gateway signature and no checkpoint covers it: a forged entry`,
    });
    const e = decodeEntrySafe(entries[pos]!.bytes);
    const held = e?.kind === 'notice' ? scan.byNotice.get(String(e.notice_id)) : undefined;
    if (held?.index === pos) held.forged = true;
  }
  return legacy;
}

/** What step 3 found: the newest size whose root matched before any mismatch, the first mismatch, and whether the stored leaf hashes are authenticated by the signed roots. */
interface RootMatch {
  lastGood: { size: number; root: Uint8Array } | undefined;
  firstMismatch: { pos: number; size: number } | undefined;
  claimedAuthentic: boolean;
}

/** Step 3: the root recomputed from the entries at each checkpoint's size (RFC 9162 2.1.1), smallest first; the stored leaf hashes folded alongside. */
function recomputeRoots(
  valid: readonly ValidCheckpoint[],
  leaves: readonly Uint8Array[],
  leafHashes: readonly Uint8Array[] | undefined,
  add: AddProblem,
): RootMatch {
  const bySize = [...valid].sort((a, b) => a.cp.treeSize - b.cp.treeSize);
  const range = CompactRange.empty();
  const claimed = leafHashes ? CompactRange.empty() : undefined;
  const match: RootMatch = {
    lastGood: undefined,
    firstMismatch: undefined,
    claimedAuthentic: leafHashes !== undefined,
  };
  let i = 0;
  for (const { pos, cp } of bySize) {
    if (cp.treeSize > leaves.length) {
      add({
        code: 'checkpoint-beyond-log',
        checkpoint: pos,
        index: leaves.length,
        message: `checkpoint #${pos} covers ${cp.treeSize} entries but only ${leaves.length} were given: entries from ${leaves.length} are missing`,
      });
      if (claimed && leafHashes!.length < cp.treeSize) match.claimedAuthentic = false;
      continue;
    }
    for (; i < cp.treeSize; i++) {
      range.append(leaves[i]!);
      if (claimed && !appendClaimedLeaf(claimed, leafHashes![i])) match.claimedAuthentic = false;
    }
    if (claimed && match.claimedAuthentic && claimed.size === cp.treeSize && !hashEqual(claimed.root(), cp.rootHash))
      match.claimedAuthentic = false;
    if (hashEqual(range.root(), cp.rootHash)) {
      if (!match.firstMismatch) match.lastGood = { size: cp.treeSize, root: cp.rootHash };
    } else {
      add({
        code: 'checkpoint-root-mismatch',
        checkpoint: pos,
        message: `checkpoint #${pos} (size ${cp.treeSize}) does not match the root recomputed from the entries`,
      });
      match.firstMismatch ??= { pos, size: cp.treeSize };
    }
  }
  return match;
}

/** Fold one stored leaf hash; false when it is not a 32-byte hash (the stored hashes then authenticate nothing). */
function appendClaimedLeaf(claimed: CompactRange, h: Uint8Array | undefined): boolean {
  if (!(h instanceof Uint8Array) || h.length !== 32) return false;
  claimed.append(h);
  return true;
}

/** Name the first changed entry exactly when the stored leaf hashes are authenticated by the signed roots; else the range it lies in. */
function nameFirstChangedEntry(
  firstMismatch: { pos: number; size: number },
  match: RootMatch,
  leaves: readonly Uint8Array[],
  leafHashes: readonly Uint8Array[] | undefined,
  add: AddProblem,
): void {
  if (match.claimedAuthentic && leafHashes) {
    const limit = Math.min(firstMismatch.size, leafHashes.length, leaves.length);
    for (let k = 0; k < limit; k++) {
      if (!hashEqual(leaves[k], leafHashes[k])) {
        add({
          code: 'entry-changed',
          index: k,
          message: `entry ${k} is not the entry the log signed (its leaf hash differs)`,
        });
        return;
      }
    }
  }
  const from = match.lastGood?.size ?? 0;
  add({
    code: 'entries-do-not-match',
    index: from,
    message: `an entry in [${from}, ${firstMismatch.size}) was changed, dropped or reordered (or checkpoint #${firstMismatch.pos} is false)`,
  });
}

/** Step 4: every notice still held against its entry's commitment; `forged` counts those whose entry is forged. */
function checkHeldNotices(
  notices: readonly { noticeId: string; signed: Uint8Array }[],
  byNotice: ReadonlyMap<string, NoticeCommitment>,
  add: AddProblem,
): { checked: number; forged: number } {
  let checked = 0;
  let forged = 0;
  for (const n of notices) {
    const e = byNotice.get(n.noticeId);
    if (!e) {
      add({ code: 'notice-not-in-log', message: `notice ${n.noticeId} is held but has no log entry` });
      continue;
    }
    checked++;
    if (e.forged) forged++;
    if (sha256Hex(n.signed) !== e.sha256)
      add({
        code: 'notice-commitment-mismatch',
        index: e.index,
        message: `notice ${n.noticeId} (entry ${e.index}) does not match its commitment`,
      });
  }
  return { checked, forged };
}

/** Registry events still held: the bytes committed to, the event the entry names, signed by the broker key the entry names. */
function checkHeldRegistryEvents(
  events: readonly { eventId: string; jws: string }[],
  byEvent: EntryScan['registryEvents'],
  brokerKeys: readonly PublicSigningJwk[],
  add: AddProblem,
): number {
  let checked = 0;
  for (const ev of events) {
    const e = byEvent.get(ev.eventId);
    if (!e) {
      add({ code: 'registry-event-not-in-log', message: `registry event ${ev.eventId} is held but has no log entry` });
      continue;
    }
    checked++;
    const why = checkRegistryEvent(ev, e, brokerKeys);
    if (why)
      add({
        code: 'registry-event-mismatch',
        index: e.index,
        message: `registry event ${ev.eventId} (entry ${e.index}): ${why}`,
      });
  }
  return checked;
}

/** Step 6: every complaint held against its entry's commitment, and every complaint entry against a held complaint. */
function checkHeldComplaints(
  held: readonly HeldComplaint[],
  byKey: EntryScan['complaints'],
  erasures: EntryScan['erasures'],
  add: AddProblem,
): number {
  let checked = 0;
  const seen = new Set<string>();
  for (const c of held) {
    const key = `${c.noticeId}:${c.agency}`;
    const e = byKey.get(key);
    if (!e) {
      add({
        code: 'complaint-not-in-log',
        message: `the complaint of ${c.agency} about notice ${c.noticeId} is held but has no log entry`,
      });
      continue;
    }
    checked++;
    seen.add(key);
    if (sha256Hex(c.jws) !== e.sha256)
      add({
        code: 'complaint-mismatch',
        index: e.index,
        message: `the complaint of ${c.agency} about notice ${c.noticeId} (entry ${e.index}) does not match its commitment`,
      });
  }
  // A complaint is sealed under its notice's key: an erasure of the notice shreds it too, so it is not missing.
  for (const [key, e] of byKey)
    if (!seen.has(key) && !erasures.has(key.slice(0, key.indexOf(':'))))
      add({
        code: 'complaint-missing',
        index: e.index,
        message: `entry ${e.index} commits to a complaint (${key}) the evidence does not hold`,
      });
  return checked;
}

/** Genuine notices a later erasure event names, and (with contents in the evidence) whose content is gone. */
function erasedByEvent(
  scan: EntryScan,
  notices: AuditInput['notices'],
): { notice_id: string; event_id: string; index: number }[] {
  const held = notices ? new Set(notices.map((n) => n.noticeId)) : undefined;
  const out: { notice_id: string; event_id: string; index: number }[] = [];
  for (const [id, n] of scan.byNotice) {
    const e = scan.erasures.get(id);
    if (!e || n.forged || e.index <= n.index || held?.has(id)) continue;
    out.push({ notice_id: id, event_id: e.eventId, index: e.index });
  }
  return out;
}

/**
 * Genuine notice entries whose content the evidence lacks and no erasure event
 * names: lost or deleted without a trace in the log, so a fault
 * (`notice-content-missing`), not an erasure.
 */
function reportMissingContents(
  scan: EntryScan,
  notices: NonNullable<AuditInput['notices']>,
  erasures: readonly { notice_id: string }[],
  add: AddProblem,
): void {
  const accounted = new Set([...notices.map((n) => n.noticeId), ...erasures.map((e) => e.notice_id)]);
  for (const [id, n] of scan.byNotice)
    if (!n.forged && !accounted.has(id))
      add({
        code: 'notice-content-missing',
        index: n.index,
        message: `notice ${id} (entry ${n.index}): its content is gone and no erasure event names it`,
      });
}

function byNoticeGenuine(m: ReadonlyMap<string, { forged?: boolean }>): number {
  let n = 0;
  for (const v of m.values()) if (!v.forged) n++;
  return n;
}

function decodeEntrySafe(bytes: Uint8Array): { kind?: unknown; notice_id?: unknown } | undefined {
  try {
    return decodeEntry(bytes);
  } catch {
    return undefined;
  }
}

/** Why a held registry event does not match its entry, or undefined when it does. */
function checkRegistryEvent(
  ev: { eventId: string; jws: string },
  e: { sha256: string; signerKid: string },
  brokerKeys: readonly PublicSigningJwk[],
): string | undefined {
  if (sha256Hex(ev.jws) !== e.sha256) return 'does not match its commitment';
  let opened;
  try {
    opened = openRegistryEvent(ev.jws, brokerKeys);
  } catch (err) {
    return (err as Error).message;
  }
  if (opened.event.id !== ev.eventId) return 'is another event than its entry names';
  if (opened.kid !== e.signerKid) return `is signed by ${opened.kid}, its entry names ${e.signerKid}`;
  return undefined;
}
