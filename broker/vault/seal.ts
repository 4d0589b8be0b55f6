/**
 * Sealing a notice at rest, pure (no I/O): each notice gets a fresh 32-byte
 * data key; the stored form is a compact JWE (`dir`, A256GCM) under that key,
 * with the notice id in the protected header, so it is part of the AAD and a
 * ciphertext moved under another notice's key does not open. The data key is
 * kept wrapped (RFC 3394 AES key wrap) under a broker storage key, in
 * NOTICE_KEYS (notice-keys.ts).
 *
 * Made with node:crypto (synchronous: a notice costs microseconds here); the
 * output is a standard JWE that jose's compactDecrypt opens, and the reverse.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CodedError } from '../core/errors.js';
import type { WrappedNoticeKey } from './notice-keys.js';

/** A broker storage key (oct, A256KW): the key-encryption key of notices' data keys. */
export interface StorageKey {
  kid: string;
  key: Uint8Array;
}

/** The protected-header member naming the notice a sealed body belongs to. */
export const NOTICE_HEADER = 'liaison-notice';
const SEALED_PREFIX = 'liaison-notice+';

/** Bytes that are not a sealed notice, or do not open under the key given: never content, never a 500. */
export class SealError extends CodedError<'log-state-invalid'> {
  constructor(reason: string) {
    super('log-state-invalid', reason);
  }
}

const RFC3394_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const B64URL = /^[A-Za-z0-9_-]*$/;

export const newDataKey = (): Uint8Array => new Uint8Array(randomBytes(32));

function keyOf(k: Uint8Array, what: string): Buffer {
  if (k.length !== 32) throw new SealError(`${what} is not 32 bytes`);
  return Buffer.from(k);
}

/** Wrap a data key under the storage key (AES-256 key wrap, RFC 3394). */
export function wrapDataKey(dataKey: Uint8Array, storage: StorageKey): WrappedNoticeKey {
  const c = createCipheriv('id-aes256-wrap', keyOf(storage.key, 'the storage key'), RFC3394_IV);
  const wrapped = Buffer.concat([c.update(keyOf(dataKey, 'the data key')), c.final()]);
  return { v: 1, kek: storage.kid, wrapped: wrapped.toString('base64url') };
}

/** Unwrap a data key; a wrong storage key or a tampered record fails the RFC 3394 integrity check. */
export function unwrapDataKey(record: WrappedNoticeKey, storage: StorageKey): Uint8Array {
  if (record.kek !== storage.kid) throw new SealError(`wrapped under storage key ${record.kek}, not ${storage.kid}`);
  const wrapped = Buffer.from(record.wrapped, 'base64url');
  if (wrapped.length !== 40) throw new SealError('the wrapped data key is not 40 bytes');
  try {
    const d = createDecipheriv('id-aes256-wrap', keyOf(storage.key, 'the storage key'), RFC3394_IV);
    return new Uint8Array(Buffer.concat([d.update(wrapped), d.final()]));
  } catch {
    throw new SealError('the data key does not unwrap under its storage key');
  }
}

/** Seal a notice's signed bytes under its data key: a compact JWE whose protected header names the notice. */
export function sealNotice(noticeId: string, format: string, signed: Uint8Array, dataKey: Uint8Array): Uint8Array {
  const header = b64u(
    Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', cty: SEALED_PREFIX + format, [NOTICE_HEADER]: noticeId })),
  );
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', keyOf(dataKey, 'the data key'), iv);
  c.setAAD(Buffer.from(header, 'ascii'));
  const ct = Buffer.concat([c.update(signed), c.final()]);
  return Buffer.from(`${header}..${b64u(iv)}.${b64u(ct)}.${b64u(c.getAuthTag())}`, 'ascii');
}

export interface SealedHeader {
  noticeId: string;
  format: string;
}

/** A sealed notice's parts, split once (parseSealed): opening it after reading its header parses nothing again. */
export interface SealedNotice {
  readonly header: SealedHeader;
  readonly protectedB64: string;
  readonly iv: Buffer;
  readonly ct: Buffer;
  readonly tag: Buffer;
}

const MAX_HEADER_CHARS = 1024;

/**
 * A sealed notice's parts, or null when the bytes are not one (a notice stored in clear before sealing). Throws
 * SealError on a header that claims to be sealed but is malformed. Reads the bytes in place (no copy of the body).
 */
export function parseSealed(bytes: Uint8Array): SealedNotice | null {
  // A compact JWE is ASCII: five base64url parts, the second (encrypted key) empty for `dir`.
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dot = view.indexOf(0x2e);
  if (dot <= 0 || dot > MAX_HEADER_CHARS) return null;
  const protectedB64 = view.toString('latin1', 0, dot);
  if (!B64URL.test(protectedB64)) return null;
  let h: unknown;
  try {
    h = JSON.parse(Buffer.from(protectedB64, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h) || !(NOTICE_HEADER in h)) return null;
  const hd = h as Record<string, unknown>;
  const id = hd[NOTICE_HEADER];
  const cty = hd.cty;
  if (
    hd.alg !== 'dir' ||
    hd.enc !== 'A256GCM' ||
    typeof id !== 'string' ||
    typeof cty !== 'string' ||
    !cty.startsWith(SEALED_PREFIX) ||
    Object.keys(hd).length !== 4
  )
    throw new SealError('a sealed notice with a header not of this broker');
  const parts = view.toString('latin1').split('.');
  if (parts.length !== 5 || parts[1] !== '' || !parts.every((p) => B64URL.test(p)))
    throw new SealError('a sealed notice that is not a compact JWE');
  const [, , iv, ct, tag] = parts.map((p) => Buffer.from(p, 'base64url'));
  if (!iv || iv.length !== 12 || !tag || tag.length !== 16 || !ct)
    throw new SealError('a sealed notice with a bad IV or tag');
  return { header: { noticeId: id, format: cty.slice(SEALED_PREFIX.length) }, protectedB64, iv, ct, tag };
}

/** The sealed notice's header when the bytes are one; null for anything else (a legacy clear notice). Throws SealError on a header that claims to be sealed but is malformed. */
export function sealedHeader(bytes: Uint8Array): SealedHeader | null {
  return parseSealed(bytes)?.header ?? null;
}

/** Open a sealed notice (its bytes, or its parts from parseSealed): it must name `noticeId` and open under its data key; else SealError. */
export function openSealed(noticeId: string, sealed: Uint8Array | SealedNotice, dataKey: Uint8Array): Uint8Array {
  const p = sealed instanceof Uint8Array ? parseSealed(sealed) : sealed;
  if (!p) throw new SealError('not a sealed notice');
  if (p.header.noticeId !== noticeId) throw new SealError('a sealed notice of another notice id');
  try {
    const d = createDecipheriv('aes-256-gcm', keyOf(dataKey, 'the data key'), p.iv);
    d.setAAD(Buffer.from(p.protectedB64, 'ascii'));
    d.setAuthTag(p.tag);
    return new Uint8Array(Buffer.concat([d.update(p.ct), d.final()]));
  } catch (e) {
    if (e instanceof SealError) throw e;
    throw new SealError('the sealed notice does not open under its data key');
  }
}
