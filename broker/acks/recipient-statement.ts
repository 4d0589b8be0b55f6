import { compactVerify } from 'jose';
import type { ResolvedSigner } from '../core/envelope.js';
import { LiaisonError } from '../core/errors.js';
import { isSha256Hex, isSlug, isUuid, subjectToken } from '../core/ids.js';
import { integrity, streamWhere } from '../core/integrity.js';
import { parseProtectedHeader } from '../core/jose-header.js';
import { parseStrictJson } from '../core/strict-json.js';
import type { StorePort, StoredMessage } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import type { BrokerSigningKey } from '../keys/broker-keys.js';
import { appendEntry, ENTRY_HEADER } from '../log/append.js';
import { decodeEntry, encodeEntry, type AckLogEntry, type ComplaintLogEntry } from '../log/entry.js';
import { ENTRY_SIGNATURE_HEADER, signEntry } from '../log/entry-signature.js';
import { sha256Hex } from '../core/sha256.js';
import { sealWithNoticeKey } from '../vault/data-key.js';
import { openStoredNotice, type StorageKeyring } from '../vault/open.js';

/**
 * What read receipts and complaints share: a statement a recipient agency
 * signs about a notice, checked, kept as received in stream ACKS (one subject
 * per notice and recipient, so "is there one already" is a last-by-subject
 * lookup that holds beyond any duplicate window) with its log entry in a
 * header, then logged; Msg-Id `<kind>:<notice-id>:<agency>` on both. The first
 * statement of a kind by an agency about a notice stands.
 *
 * A kind whose JWS may hold notice content (a complaint's detail may quote
 * the notice) is kept sealed under the notice's own data key (broker/vault/),
 * so erasing the notice shreds it too; the log entry and the headers hold
 * ids, times and hashes only.
 */
export type StatementEntry = AckLogEntry | ComplaintLogEntry;

export interface StatementKind<E extends StatementEntry> {
  kind: E['kind'];
  /** The JWS `typ` the recipient signs. */
  typ: string;
  /** How refusals and findings name it: "read receipt", "complaint". */
  what: string;
  /** The subject token in ACKS: `<token>.<notice-id>.<agency>`. */
  subjectToken: 'acks' | 'complaints';
  /** The recipient's signed time among the entry's members. */
  signedAt: 'acked_at' | 'complained_at';
  /** The largest JWS accepted, in bytes (its payload is at most as large). */
  maxBytes: number;
  /** The entry's members of this kind beyond the common ones, well formed. */
  isWellFormed: (entry: Partial<E>) => boolean;
  /**
   * Set when the JWS is kept sealed in ACKS under the notice's data key: what
   * the sealed form's `cty` names after `liaison-notice+`. Unset: kept as
   * received (a read receipt holds ids, a cursor and a hash, nothing of the notice).
   */
  sealAs?: string;
}

export const STATEMENT_ENTRY_HEADER = ENTRY_HEADER;
/** The notice's origin agency: who may list the statements about it. */
export const STATEMENT_ORIGIN_HEADER = 'Liaison-Origin';

export const statementSubject = (
  k: Pick<StatementKind<StatementEntry>, 'subjectToken'>,
  noticeId: string,
  agency: string,
) => `${k.subjectToken}.${subjectToken(noticeId, 'notice_id')}.${subjectToken(agency, 'agency')}`;
export const statementMsgId = (k: Pick<StatementKind<StatementEntry>, 'kind'>, noticeId: string, agency: string) =>
  `${k.kind}:${noticeId}:${agency}`;

export interface StatementDeps {
  bus: StorePort;
  resolveSigner: (kid: string) => Promise<ResolvedSigner>;
  clockSkewSeconds: number;
  /** The broker's current signing key (signs the statement's log entry). */
  signer: () => BrokerSigningKey;
  /** The broker storage keys: they open the notices' data keys a sealed statement is kept under. */
  storageKeys: StorageKeyring;
  now?: () => Date;
}

/** The notice was erased: nothing about it is stored any more (the recipient has its erasure record). */
const erased = () => new LiaisonError('not-found', { publicDetail: 'this notice was erased' });

/**
 * Steps every statement takes before its own claims are read: the size, the
 * JWS header (alg allowlist, kid, typ; nothing else), the signer (an active
 * signing key of the caller itself), the signature, strict JSON.
 */
export async function openStatement<E extends StatementEntry>(
  deps: Pick<StatementDeps, 'resolveSigner'>,
  k: StatementKind<E>,
  agency: string,
  jws: string,
): Promise<{ payload: unknown; signer: ResolvedSigner }> {
  const { maxBytes } = k;
  if (jws.length > maxBytes)
    throw new LiaisonError('too-large', { publicDetail: `a ${k.what} is at most ${maxBytes} bytes` });
  const parts = jws.split('.');
  if (parts.length !== 3) throw new LiaisonError('bad-request', { publicDetail: 'the body must be a compact JWS' });
  const header = parseProtectedHeader(parts[0] as string, {
    what: 'JWS',
    allowedAlgs: ['EdDSA', 'Ed25519', 'ES256'],
    allowedParams: ['alg', 'kid', 'typ'],
  });
  if (header.typ !== k.typ) throw new LiaisonError('bad-request', { publicDetail: `typ must be ${k.typ}` });
  const signer = await deps.resolveSigner(header.kid);
  if (signer.agencyId !== agency)
    throw new LiaisonError('forbidden', { publicDetail: `a ${k.what} must be signed by the recipient agency itself` });
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, signer.key, { algorithms: [...signer.algorithms] }));
  } catch (e) {
    throw new LiaisonError('signature-invalid', { detail: `${k.kind} signature: ${(e as Error).message}`, cause: e });
  }
  return { payload: parseStrictJson(payload, { maxBytes, maxDepth: 2 }), signer };
}

/** The recipient's signed time: not in the future beyond the skew, nor before the broker received the notice. */
export function checkSignedTime(
  deps: Pick<StatementDeps, 'clockSkewSeconds'>,
  now: Date,
  field: string,
  signedAt: string,
  noticeReceivedAt: string,
  mismatch: (publicDetail: string) => LiaisonError,
): void {
  const at = Date.parse(signedAt);
  const skew = deps.clockSkewSeconds * 1000;
  if (at > now.getTime() + skew) throw new LiaisonError('clock-skew', { publicDetail: `${field} is in the future` });
  if (at < Date.parse(noticeReceivedAt) - skew) throw mismatch(`${field} is before the broker received the notice`);
}

/**
 * The log entry a stored statement carries, or undefined when the message is
 * not a statement of this kind the broker stored (junk in ACKS: reported as a
 * finding, skipped).
 */
export function storedStatement<E extends StatementEntry>(
  k: StatementKind<E>,
  m: StoredMessage,
): { entry: E; bytes: Uint8Array } | undefined {
  const bytes = Buffer.from(m.header?.get(STATEMENT_ENTRY_HEADER) ?? '', 'base64url');
  let entry: Partial<E> | undefined;
  try {
    entry = bytes.length === 0 ? undefined : (decodeEntry(bytes) as unknown as Partial<E>);
  } catch {
    entry = undefined;
  }
  const ok =
    typeof entry === 'object' &&
    entry !== null &&
    entry.kind === k.kind &&
    isUuid(entry.notice_id) &&
    isSlug(entry.agency) &&
    typeof entry.signer_kid === 'string' &&
    typeof entry[k.signedAt as keyof E] === 'string' &&
    typeof entry.received_at === 'string' &&
    isSha256Hex(entry.sha256) &&
    k.isWellFormed(entry) &&
    m.data.length > 0;
  if (ok) return { entry: entry as E, bytes };
  integrity.report(undefined, 'acks', streamWhere(STREAMS.acks, m.seq), `not a stored ${k.what}`);
  return undefined;
}

export interface RecordedStatement<E extends StatementEntry> {
  entry: E;
  log_index: number;
  /** A statement of this agency about this notice was stored before: `entry` is that first one. */
  duplicate: boolean;
}

/**
 * Store, then log. The first statement of this kind by `entry.agency` about
 * the notice stands: a later one gets the first back (`duplicate`), and the
 * first's entry is appended again (a no-op when it is logged; writes it if a
 * crash lost it).
 */
export async function storeAndLog<E extends StatementEntry>(
  deps: StatementDeps,
  k: StatementKind<E>,
  jws: string,
  entry: E,
  origin: string,
): Promise<RecordedStatement<E>> {
  const { bus } = deps;
  const subject = statementSubject(k, entry.notice_id, entry.agency);
  const msgID = statementMsgId(k, entry.notice_id, entry.agency);
  const last = await bus.lastMessage(STREAMS.acks, subject, `${k.subjectToken} lookup`);
  // Junk stored under the subject is not a first statement (a finding): this one is stored.
  let first = last ? storedStatement(k, last) : undefined;
  let signature = first ? last?.header?.get(ENTRY_SIGNATURE_HEADER) || undefined : undefined;
  let duplicate = first !== undefined;
  if (!first) {
    const clear = new TextEncoder().encode(jws);
    const data = k.sealAs ? await sealWithNoticeKey(bus, deps.storageKeys, entry.notice_id, k.sealAs, clear) : clear;
    if (!data) throw erased();
    const bytes = encodeEntry(entry);
    signature = signEntry(deps.signer(), bytes);
    const stored = await bus.publish(subject, data, {
      msgID,
      headers: {
        [STATEMENT_ENTRY_HEADER]: Buffer.from(bytes).toString('base64url'),
        [ENTRY_SIGNATURE_HEADER]: signature,
        [STATEMENT_ORIGIN_HEADER]: origin,
        'Liaison-Notice-Id': entry.notice_id,
      },
    });
    first = { entry, bytes };
    if (stored.duplicate) {
      // A concurrent first statement won: answer with it.
      const m = await bus.getMessage(STREAMS.acks, stored.seq);
      first = m ? storedStatement(k, m) : undefined;
      if (!first)
        throw new LiaisonError('unavailable', {
          detail: `the first ${k.what} of ${entry.notice_id} by ${entry.agency} is not readable`,
        });
      signature = m?.header?.get(ENTRY_SIGNATURE_HEADER) || undefined;
      duplicate = true;
    }
  }
  const logged = await appendEntry(bus, msgID, first.bytes, signature);
  return { entry: first.entry, log_index: logged.seq - 1, duplicate };
}

/**
 * The JWS a stored statement holds, exactly as received: opened with the
 * notice's data key when the kind is sealed (a statement stored in clear
 * before sealing is read as it is). `erased` when the notice's key was
 * destroyed; undefined (with an integrity finding) when the message does not
 * open, or does not hold what its entry commits to.
 */
export async function statementJws<E extends StatementEntry>(
  deps: Pick<StatementDeps, 'bus' | 'storageKeys'>,
  k: StatementKind<E>,
  m: StoredMessage,
  entry: E,
): Promise<{ jws: string } | { erased: true } | undefined> {
  let bytes: Uint8Array = m.data;
  if (k.sealAs) {
    let opened;
    try {
      opened = await openStoredNotice(deps.bus, deps.storageKeys, entry.notice_id, m.data);
    } catch (e) {
      // A storage key this instance lacks is retryable (503); anything else is junk.
      if ((e as { code?: string }).code !== 'log-state-invalid') throw e;
      opened = undefined;
    }
    if (opened?.kind === 'erased') return { erased: true };
    bytes = opened?.signed ?? new Uint8Array();
  }
  const jws = new TextDecoder().decode(bytes);
  if (bytes.length > 0 && sha256Hex(jws) === entry.sha256) return { jws };
  integrity.report(undefined, 'acks', streamWhere(STREAMS.acks, m.seq), `a ${k.what} that is not the one logged`);
  return undefined;
}

/**
 * The statements of this kind about a notice, for its origin agency (and,
 * `auditor` set, for an agency with the audit role); anyone else, and a
 * notice with none: the same not-found, no oracle on who said what. Each with
 * its JWS exactly as received; those of an erased notice are gone.
 */
export async function listStatements<E extends StatementEntry>(
  deps: Pick<StatementDeps, 'bus' | 'storageKeys'>,
  k: StatementKind<E>,
  noticeId: string,
  caller: string,
  auditor = false,
): Promise<{ entry: E; jws: string }[]> {
  if (!isUuid(noticeId))
    throw new LiaisonError('bad-request', { publicDetail: 'the notice id must be a lower-case UUID' });
  const notFound = () =>
    new LiaisonError('not-found', { publicDetail: `no notice of yours with ${k.what}s under this id` });
  const subject = `${k.subjectToken}.${noticeId}.*`;
  const out: { entry: E; jws: string }[] = [];
  let seq = 1;
  for (let i = 0; i < 10_000; i++) {
    const m = await deps.bus.nextMessage(STREAMS.acks, seq, subject, `${k.subjectToken} list`);
    if (!m) break;
    seq = m.seq + 1;
    // Junk is skipped with a finding, before the origin check: it must not hide the real ones.
    const stored = storedStatement(k, m);
    if (!stored) continue;
    if (!auditor && m.header?.get(STATEMENT_ORIGIN_HEADER) !== caller) throw notFound();
    const held = await statementJws(deps, k, m, stored.entry);
    if (held && 'jws' in held) out.push({ entry: stored.entry, jws: held.jws });
  }
  if (out.length === 0) throw notFound();
  return out;
}
