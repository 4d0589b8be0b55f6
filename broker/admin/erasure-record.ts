import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import canonicalize from 'canonicalize';
import { CompactSign } from 'jose';
import { LiaisonError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { BrokerSigningKey } from '../keys/broker-keys.js';

/**
 * A notice's erasure, as its recipients see it: a compact JWS by the broker
 * (typ liaison-erasure+jws) of `{ notice_id, event_id, erased_at, log_index }`,
 * the event being the `notice-erased` registry event in the log. It is what
 * the inbox carries in place of the erased delivery (pull, SSE, webhook), so
 * a recipient can tell the broker's word from a forgery with GET /v1/keys, and
 * find the event in the log. It names neither the actor nor the reason.
 */
export const ERASURE_RECORD_TYP = 'liaison-erasure+jws';

/** Header of the DELIVERIES message that carries an erasure record to one recipient: the erasure event's id. */
export const ERASURE_HEADER = 'Liaison-Erasure';

export interface ErasureRecord {
  notice_id: string;
  event_id: string;
  erased_at: string;
  /** The log index of the `notice-erased` event. */
  log_index: number;
}

/**
 * The one event id of a notice's erasure: derived from the notice id (a UUID
 * of version 8), so every request to erase a notice (a retry, a second
 * operator, the retention eraser) names the same event, which is recorded once.
 */
export function erasureEventId(noticeId: string): string {
  const h = createHash('sha256').update(`liaison:notice-erased:${noticeId}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Longest erasure reason, in characters (UTF-16 code units, as JSON Schema's maxLength counts). */
export const MAX_ERASURE_REASON = 500;

/**
 * An erasure's reason, checked: non-empty, at most MAX_ERASURE_REASON
 * characters, well-formed Unicode (no lone surrogate: it could not be kept
 * byte-exact in UTF-8), no control characters but tab and newlines, no
 * Unicode bidirectional controls (which make a text read other than it is).
 * Any script; kept as given, never normalized.
 */
export function checkErasureReason(reason: unknown): string {
  const bad = (why: string) => new LiaisonError('bad-request', { publicDetail: `reason ${why}` });
  if (typeof reason !== 'string') throw bad('must be a string');
  if (reason.trim() === '') throw bad('must not be empty');
  if (reason.length > MAX_ERASURE_REASON) throw bad(`must be at most ${MAX_ERASURE_REASON} characters`);
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(reason))
    throw bad('must be well-formed Unicode (no lone surrogates)');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(reason))
    throw bad('must not hold control characters');
  if (/[\u202a-\u202e\u2066-\u2069]/.test(reason)) throw bad('must not hold bidirectional control characters');
  return reason;
}

export async function signErasureRecord(key: BrokerSigningKey, record: ErasureRecord): Promise<string> {
  const text = canonicalize(record);
  if (text === undefined) throw new Error('erasure record cannot be canonicalized');
  return new CompactSign(new TextEncoder().encode(text))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ERASURE_RECORD_TYP })
    .sign(key.privateKey);
}

/**
 * Open an erasure record: a compact JWS (EdDSA, typ liaison-erasure+jws) by a
 * key of the broker's signing key history (GET /v1/keys). Throws an Error
 * that says what is wrong.
 */
export function openErasureRecord(
  jws: string,
  brokerKeys: readonly { kty?: unknown; crv?: unknown; x?: unknown; kid?: unknown }[],
): ErasureRecord {
  const [h, p, sig, ...rest] = jws.split('.');
  if (rest.length > 0 || !h || !p || !sig) throw new Error('is not a compact JWS');
  let header: { alg?: unknown; kid?: unknown; typ?: unknown };
  let record: Partial<ErasureRecord>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
    record = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Partial<ErasureRecord>;
  } catch {
    throw new Error('is not a compact JWS of JSON');
  }
  if (header.alg !== 'EdDSA' || header.typ !== ERASURE_RECORD_TYP || typeof header.kid !== 'string')
    throw new Error('header is not that of a broker erasure record');
  const jwk = brokerKeys.find(
    (k) => k.kid === header.kid && k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.x === 'string',
  );
  if (!jwk) throw new Error(`its signing key ${header.kid} is not a broker key`);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x as string }, format: 'jwk' });
  if (!cryptoVerify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url')))
    throw new Error('the broker signature does not verify');
  if (
    typeof record !== 'object' ||
    record === null ||
    !isUuid(record.notice_id) ||
    !isUuid(record.event_id) ||
    typeof record.erased_at !== 'string' ||
    !Number.isSafeInteger(record.log_index)
  )
    throw new Error('is not an erasure record');
  return record as ErasureRecord;
}
