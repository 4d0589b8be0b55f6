/**
 * Signed checkpoints of the log in the C2SP formats:
 *
 * - tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the note text is
 *     <origin>\n<tree size, decimal>\n<base64 root hash>\n[extension lines\n]
 *   Liaison adds one extension line, `timestamp <unix milliseconds>`.
 * - signed-note (https://c2sp.org/signed-note): the text, a blank line, then
 *   one or more lines `— <key name> <base64(key id (4 bytes) || signature)>`.
 *   An Ed25519 key's id is SHA-256(name || 0x0A || 0x01 || public key)[:4],
 *   and it signs the text exactly, final newline included.
 *
 * Pure: no I/O. The text is attacker-controlled when a checkpoint is parsed or
 * verified (an auditor's archive, an API answer), so parsing is bounded and
 * character-by-character: no RegExp with backtracking, no BigInt(), no Number()
 * on unchecked strings, and verification never throws.
 */

import { createHash, createPublicKey, verify as nodeVerify, webcrypto, type KeyObject } from 'node:crypto';
import { Buffer } from 'node:buffer';

import { CodedError, type CodeOf } from '../core/errors.js';
import { HASH_SIZE } from './merkle.js';

/** A note larger than this is refused unread (a checkpoint is a few hundred bytes). */
export const MAX_NOTE_BYTES = 16 * 1024;
/** At most this many signature lines are looked at. */
export const MAX_SIGNATURES = 16;
const MAX_LINE = 1024;
const MAX_EXTENSIONS = 8;
const SIG_PREFIX = '\u2014 '; // em dash, space
const ED25519_TYPE = 0x01;

export type CheckpointErrorCode = CodeOf<'checkpoint'>;

export class CheckpointError extends CodedError<CheckpointErrorCode> {}

export interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: Uint8Array;
  /** Unix milliseconds when the checkpoint was made (extension line `timestamp`). */
  timestamp: number;
}

export interface NoteSignature {
  name: string;
  keyId: Uint8Array;
  signature: Uint8Array;
}

export interface ParsedNote {
  /** The signed text, final newline included: the bytes the signatures cover. */
  text: string;
  checkpoint: Checkpoint;
  signatures: NoteSignature[];
}

/** A public Ed25519 signing key of the broker: JWK (kty OKP, crv Ed25519, x) with its kid. */
export interface PublicSigningJwk {
  kty?: string;
  crv?: string;
  x?: string;
  kid?: string;
}

const malformed = (why: string): CheckpointError => new CheckpointError('checkpoint-malformed', `checkpoint: ${why}`);

/** C2SP signed-note key names: non-empty, no Unicode spaces or '+'. We are stricter: printable ASCII. */
function isKeyName(s: string): boolean {
  if (s.length === 0 || s.length > 255) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x2b /* + */) return false;
  }
  return true;
}

/** The origin line: non-empty printable ASCII, no spaces (we also sign under it as key name). */
function isOrigin(s: string): boolean {
  return isKeyName(s);
}

/** Decimal without sign or leading zeros, as a safe integer; undefined otherwise. Never BigInt or Number() on raw input. */
function parseDecimal(s: string, maxDigits = 16): number | undefined {
  if (s.length === 0 || s.length > maxDigits) return undefined;
  if (s.length > 1 && s.charCodeAt(0) === 0x30) return undefined;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
    n = n * 10 + (c - 0x30);
  }
  return Number.isSafeInteger(n) ? n : undefined;
}

function isStdBase64(s: string): boolean {
  if (s.length === 0 || s.length % 4 !== 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok =
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x2b ||
      c === 0x2f ||
      (c === 0x3d && i >= s.length - 2);
    if (!ok) return false;
  }
  if (s.charCodeAt(s.length - 2) === 0x3d && s.charCodeAt(s.length - 1) !== 0x3d) return false;
  return true;
}

/** Strict standard base64: decodes and re-encodes to the same text (no garbage, canonical padding). */
function decodeBase64(s: string): Uint8Array | undefined {
  if (!isStdBase64(s)) return undefined;
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) return undefined;
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The note text of a checkpoint (tlog-checkpoint body), ending in a newline. */
export function checkpointText(c: Checkpoint): string {
  if (!isOrigin(c.origin)) throw malformed('origin must be printable ASCII without spaces or +');
  if (!Number.isSafeInteger(c.treeSize) || c.treeSize < 0)
    throw malformed('tree size must be a non-negative safe integer');
  if (!(c.rootHash instanceof Uint8Array) || c.rootHash.length !== HASH_SIZE)
    throw malformed(`root hash must be ${HASH_SIZE} bytes`);
  if (!Number.isSafeInteger(c.timestamp) || c.timestamp < 0)
    throw malformed('timestamp must be a non-negative safe integer');
  return `${c.origin}\n${c.treeSize}\n${Buffer.from(c.rootHash).toString('base64')}\ntimestamp ${c.timestamp}\n`;
}

/** signed-note: key id of an Ed25519 key = SHA-256(name || "\n" || 0x01 || public key)[:4]. */
export function ed25519KeyId(name: string, publicKey: Uint8Array): Uint8Array {
  const h = createHash('sha256')
    .update(name, 'utf8')
    .update(Uint8Array.of(0x0a, ED25519_TYPE))
    .update(publicKey)
    .digest();
  return new Uint8Array(h.subarray(0, 4));
}

function rawEd25519(jwk: PublicSigningJwk): Uint8Array | undefined {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || jwk.x.length !== 43) return undefined;
  const b = Buffer.from(jwk.x, 'base64url');
  return b.length === 32 ? new Uint8Array(b) : undefined;
}

/**
 * Sign a checkpoint as a signed note under key name `c.origin` with the
 * broker's Ed25519 signing key (a WebCrypto CryptoKey) and its public JWK.
 */
export async function signCheckpoint(
  c: Checkpoint,
  privateKey: webcrypto.CryptoKey,
  publicJwk: PublicSigningJwk,
): Promise<string> {
  const text = checkpointText(c);
  const pub = rawEd25519(publicJwk);
  if (!pub) throw malformed('the signing key must be an Ed25519 public JWK');
  const sig = new Uint8Array(await webcrypto.subtle.sign('Ed25519', privateKey, new TextEncoder().encode(text)));
  const blob = Buffer.concat([ed25519KeyId(c.origin, pub), sig]).toString('base64');
  return `${text}\n${SIG_PREFIX}${c.origin} ${blob}\n`;
}

function checkTextChars(note: string): void {
  for (let i = 0; i < note.length; i++) {
    const c = note.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a) || c === 0x7f) throw malformed('control characters are not allowed');
    if (c >= 0xd800 && c <= 0xdfff) {
      // A lone surrogate is not UTF-8 text.
      const next = note.charCodeAt(i + 1);
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) throw malformed('not valid Unicode text');
      i++;
    }
  }
}

/**
 * Parse a signed checkpoint note (attacker-controlled). Checks the structure
 * only; signatures are checked by verifyCheckpoint. Throws CheckpointError
 * 'checkpoint-malformed'.
 */
export function parseCheckpoint(input: unknown): ParsedNote {
  let note: string;
  if (typeof input === 'string') {
    if (input.length > MAX_NOTE_BYTES) throw malformed('too large');
    note = input;
  } else if (input instanceof Uint8Array) {
    if (input.length > MAX_NOTE_BYTES) throw malformed('too large');
    try {
      note = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw malformed('not valid UTF-8');
    }
  } else {
    throw malformed('must be text');
  }
  if (Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES) throw malformed('too large');
  checkTextChars(note);
  // The text ends at the first blank line; everything after it is signature lines.
  const split = note.indexOf('\n\n');
  if (split < 0) throw malformed('no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const sigPart = note.slice(split + 2);
  if (sigPart.length === 0 || sigPart.charCodeAt(sigPart.length - 1) !== 0x0a)
    throw malformed('signature lines must end with a newline');

  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3 || lines.length > 3 + MAX_EXTENSIONS)
    throw malformed('expected origin, tree size, root hash and at most a few extension lines');
  for (const l of lines)
    if (l.length === 0 || l.length > MAX_LINE) throw malformed('empty or over-long line in the note text');
  const [origin, sizeLine, rootLine, ...ext] = lines as [string, string, string, ...string[]];
  if (!isOrigin(origin)) throw malformed('bad origin line');
  const treeSize = parseDecimal(sizeLine);
  if (treeSize === undefined) throw malformed('tree size is not a canonical decimal safe integer');
  const rootHash = decodeBase64(rootLine);
  if (!rootHash || rootHash.length !== HASH_SIZE) throw malformed('root hash is not base64 of 32 bytes');
  let timestamp: number | undefined;
  for (const e of ext) {
    if (e.startsWith('timestamp ')) {
      if (timestamp !== undefined) throw malformed('two timestamp lines');
      timestamp = parseDecimal(e.slice('timestamp '.length));
      if (timestamp === undefined) throw malformed('timestamp is not a canonical decimal');
    }
    // Other extension lines are allowed by tlog-checkpoint and ignored.
  }
  if (timestamp === undefined) throw malformed('no timestamp line');

  const sigLines = sigPart.slice(0, -1).split('\n');
  if (sigLines.length > MAX_SIGNATURES) throw malformed('too many signature lines');
  const signatures: NoteSignature[] = [];
  for (const l of sigLines) {
    if (!l.startsWith(SIG_PREFIX) || l.length > MAX_LINE)
      throw malformed('a signature line must start with an em dash and a space');
    const rest = l.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    if (sp < 0 || rest.indexOf(' ', sp + 1) >= 0) throw malformed('a signature line is "— <name> <base64>"');
    const name = rest.slice(0, sp);
    if (!isKeyName(name)) throw malformed('bad key name in a signature line');
    const blob = decodeBase64(rest.slice(sp + 1));
    if (!blob || blob.length < 5) throw malformed('bad signature encoding');
    signatures.push({ name, keyId: blob.slice(0, 4), signature: blob.slice(4) });
  }
  return { text, checkpoint: { origin, treeSize, rootHash, timestamp }, signatures };
}

export interface VerifiedCheckpoint extends ParsedNote {
  /** kid of the broker key whose signature verified. */
  kid: string | undefined;
}

interface KnownKey {
  kid: string | undefined;
  keyId: Uint8Array;
  key: KeyObject;
}

/**
 * Verifies signed checkpoints against a key history: every Ed25519 signing key
 * the broker has published (old ones included, so checkpoints signed before a
 * rotation still verify). Key name = the expected origin.
 */
export class CheckpointVerifier {
  readonly #origin: string;
  readonly #keys: KnownKey[];

  constructor(origin: string, keys: readonly PublicSigningJwk[]) {
    if (!isOrigin(origin)) throw malformed('bad expected origin');
    this.#origin = origin;
    this.#keys = [];
    for (const jwk of keys) {
      const raw = rawEd25519(jwk);
      if (!raw) continue; // not an Ed25519 signing key (e.g. an encryption key in the same JWKS)
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x as string }, format: 'jwk' });
      this.#keys.push({ kid: jwk.kid, keyId: ed25519KeyId(origin, raw), key });
    }
    if (this.#keys.length === 0) throw malformed('no Ed25519 verification key given');
  }

  /**
   * Parse and verify. Throws CheckpointError: 'checkpoint-malformed',
   * 'checkpoint-origin-mismatch' (another log's checkpoint) or
   * 'checkpoint-signature-invalid' (no signature by a known key verifies).
   * Signatures by unknown keys (e.g. witnesses) are ignored, as signed-note says.
   */
  verify(note: unknown): VerifiedCheckpoint {
    const parsed = parseCheckpoint(note);
    if (parsed.checkpoint.origin !== this.#origin)
      throw new CheckpointError('checkpoint-origin-mismatch', 'checkpoint: origin is not the expected log');
    const msg = Buffer.from(parsed.text, 'utf8');
    for (const s of parsed.signatures) {
      if (s.name !== this.#origin || s.signature.length !== 64) continue;
      for (const k of this.#keys) {
        if (Buffer.compare(Buffer.from(k.keyId), Buffer.from(s.keyId)) !== 0) continue;
        let ok: boolean;
        try {
          ok = nodeVerify(null, msg, k.key, s.signature);
        } catch {
          ok = false;
        }
        if (ok) return { ...parsed, kid: k.kid };
      }
    }
    throw new CheckpointError(
      'checkpoint-signature-invalid',
      'checkpoint: no signature by a known broker key verifies',
    );
  }

  /** verify() that answers undefined instead of throwing. */
  tryVerify(note: unknown): VerifiedCheckpoint | undefined {
    try {
      return this.verify(note);
    } catch {
      return undefined;
    }
  }
}
