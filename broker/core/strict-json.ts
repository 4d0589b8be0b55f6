/**
 * Strict JSON for hostile input (the signed payload of a notice).
 *
 * `JSON.parse` silently accepts duplicate keys (last one wins), so a signer and a
 * checker can read different documents out of the same signed bytes; it also
 * builds `__proto__` members. Node 20's `JSON.parse` gives no access to source
 * text, so this module first validates the text with a small iterative scanner
 * (no recursion: deep input cannot blow the stack) and only then hands it to
 * `JSON.parse`, which is therefore only ever called on text we accept.
 *
 * Accepted: exactly the RFC 8259 grammar, with an object at the top level, and
 * in addition (I-JSON, RFC 7493 §2.1, which RFC 8785 canonicalisation assumes)
 * no unpaired surrogates in strings, raw or escaped: they cannot be encoded in
 * UTF-8 and parsers disagree about them.
 *
 * Refused with `json-invalid`: invalid UTF-8, a leading BOM, any syntax error,
 * duplicate keys in one object (compared after decoding escapes), the keys
 * `__proto__`, `constructor` and `prototype`, nesting deeper than `maxDepth`
 * (depth 1 = the top-level object), more than `maxKeys` members in one object,
 * strings (keys included) longer than `maxStringLength` UTF-16 code units.
 * Refused with `too-large`: more than `maxBytes` bytes of UTF-8.
 *
 * `publicDetail` is a fixed reason plus a JSON Pointer to where the scanner
 * stopped, e.g. `duplicate key at "/subjects/0/name"`. It never carries values;
 * a key is shown in the pointer only when it looks like a plain ASCII field name
 * (`[A-Za-z0-9_.-]{1,64}`), any other key segment is shown as `*`.
 */
import { LiaisonError } from './errors.js';

export interface StrictJsonLimits {
  /** Largest accepted input, in bytes of UTF-8. */
  maxBytes: number;
  /** Deepest accepted nesting; the top-level object is depth 1. */
  maxDepth: number;
  /** Most members accepted in one object. Default 1000. */
  maxKeys?: number;
  /** Longest accepted string (keys included), in UTF-16 code units after decoding escapes. Default 1 000 000. */
  maxStringLength?: number;
}

export const DEFAULT_MAX_KEYS = 1000;
export const DEFAULT_MAX_STRING_LENGTH = 1_000_000;

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
/** Key segments shown in a pointer; none of these characters needs JSON Pointer escaping. */
const SHOWABLE_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const UNPAIRED = 'unpaired surrogate in string';
const BAD_ESCAPE = 'invalid escape sequence';
const BAD_NUMBER = 'invalid number';
const END = 'unexpected end of input';
const UNEXPECTED = 'unexpected character';

function invalid(reason: string, pointer?: string, offset?: number): LiaisonError {
  const publicDetail = pointer === undefined ? reason : `${reason} at "${pointer}"`;
  return new LiaisonError('json-invalid', {
    detail: offset === undefined ? `strict-json: ${publicDetail}` : `strict-json: ${publicDetail} (offset ${offset})`,
    publicDetail,
  });
}

function checkLimit(name: string, value: number): number {
  // Programmer error, not an input error: `!(>= 0)` also catches NaN.
  if (typeof value !== 'number' || !(value >= 0))
    throw new RangeError(`strict-json: limit ${name} must be a number >= 0`);
  return value;
}

/**
 * Parse `input` (UTF-8 bytes or text) as strict JSON whose top-level value is an
 * object. Throws `LiaisonError` ('json-invalid' or 'too-large') on any refusal.
 */
export function parseStrictJson(input: Uint8Array | string, limits: StrictJsonLimits): unknown {
  const maxBytes = checkLimit('maxBytes', limits.maxBytes);
  const maxDepth = checkLimit('maxDepth', limits.maxDepth);
  const maxKeys = checkLimit('maxKeys', limits.maxKeys ?? DEFAULT_MAX_KEYS);
  const maxStringLength = checkLimit('maxStringLength', limits.maxStringLength ?? DEFAULT_MAX_STRING_LENGTH);

  let text: string;
  if (typeof input === 'string') {
    // Each UTF-16 code unit is 1 to 3 bytes of UTF-8: only count bytes when it matters.
    if (input.length > maxBytes || (input.length * 3 > maxBytes && Buffer.byteLength(input, 'utf8') > maxBytes)) {
      throw tooLarge(maxBytes);
    }
    text = input;
  } else if (input instanceof Uint8Array) {
    if (input.byteLength > maxBytes) throw tooLarge(maxBytes);
    try {
      text = decoder.decode(input);
    } catch {
      throw invalid('input is not valid UTF-8');
    }
  } else {
    throw invalid('input must be bytes or text');
  }
  // With ignoreBOM the decoder keeps a BOM as U+FEFF, so this covers bytes and text alike.
  if (text.charCodeAt(0) === 0xfeff) throw invalid('input starts with a byte order mark');

  validate(text, maxDepth, maxKeys, maxStringLength);
  return JSON.parse(text);
}

function tooLarge(maxBytes: number): LiaisonError {
  return new LiaisonError('too-large', {
    detail: `strict-json: input larger than ${maxBytes} bytes`,
    publicDetail: `the signed payload is larger than ${maxBytes} bytes`,
  });
}

// Scanner helpers return the next position, or -1 after recording why in these two.
let failReason = '';
let failAt = 0;
/** Set by scanString: whether the string just scanned contained an escape. */
let sawEscape = false;

function fail(reason: string, at: number): number {
  failReason = reason;
  failAt = at;
  return -1;
}

function skipWs(text: string, pos: number): number {
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
    else return pos;
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20; // ASCII lower case; NaN | 0x20 is 0x20, not a hex digit
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

function hex4(text: string, pos: number): number {
  const a = hexDigit(text.charCodeAt(pos));
  const b = hexDigit(text.charCodeAt(pos + 1));
  const c = hexDigit(text.charCodeAt(pos + 2));
  const d = hexDigit(text.charCodeAt(pos + 3));
  return (a | b | c | d) < 0 ? -1 : (a << 12) | (b << 8) | (c << 4) | d;
}

/**
 * Scan a string whose opening quote is at `pos - 1`. Returns the position after
 * the closing quote. Checks escapes, control characters, surrogate pairing
 * (a pair is either two raw code units or two `\u` escapes) and decoded length.
 */
function scanString(text: string, pos: number, maxLength: number): number {
  const start = pos;
  let saved = 0; // source code units minus decoded code units
  let pending = 0; // 0: no high surrogate pending; 1: a raw one; 2: an escaped one
  for (;;) {
    let c = text.charCodeAt(pos);
    // Hot path: a run of plain characters (NaN past the end fails `>= 0x20`).
    while (c >= 0x20 && c < 0xd800 && c !== 0x22 && c !== 0x5c && pending === 0) c = text.charCodeAt(++pos);
    if (c === 0x22) {
      if (pending !== 0) return fail(UNPAIRED, pos);
      break;
    }
    if (c === 0x5c) {
      const e = text.charCodeAt(pos + 1);
      if (e === 0x75) {
        const u = hex4(text, pos + 2);
        if (u < 0) return fail(BAD_ESCAPE, pos);
        if (pending !== 0) {
          if (pending !== 2 || u < 0xdc00 || u > 0xdfff) return fail(UNPAIRED, pos);
          pending = 0;
        } else if (u >= 0xd800 && u <= 0xdfff) {
          if (u >= 0xdc00) return fail(UNPAIRED, pos);
          pending = 2;
        }
        pos += 6;
        saved += 5;
      } else if (
        e === 0x22 ||
        e === 0x5c ||
        e === 0x2f ||
        e === 0x62 ||
        e === 0x66 ||
        e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      ) {
        if (pending !== 0) return fail(UNPAIRED, pos);
        pos += 2;
        saved += 1;
      } else {
        return fail(BAD_ESCAPE, pos);
      }
      continue;
    }
    if (c >= 0x20) {
      if (pending !== 0) {
        if (pending !== 1 || c < 0xdc00 || c > 0xdfff) return fail(UNPAIRED, pos);
        pending = 0;
      } else if (c >= 0xd800 && c <= 0xdfff) {
        if (c >= 0xdc00) return fail(UNPAIRED, pos);
        pending = 1;
      }
      pos++;
      continue;
    }
    // c is a control character, or NaN past the end of the text.
    return fail(pos >= text.length ? END : 'unescaped control character in string', pos);
  }
  if (pos - start - saved > maxLength) return fail('string too long', start - 1);
  sawEscape = saved !== 0;
  return pos + 1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Scan `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` starting at `pos`. */
function scanNumber(text: string, pos: number): number {
  const start = pos;
  let c = text.charCodeAt(pos);
  if (c === 0x2d) c = text.charCodeAt(++pos);
  if (c === 0x30) {
    c = text.charCodeAt(++pos);
    if (isDigit(c)) return fail(BAD_NUMBER, start); // leading zero
  } else if (isDigit(c)) {
    do c = text.charCodeAt(++pos);
    while (isDigit(c));
  } else {
    return fail(BAD_NUMBER, start);
  }
  if (c === 0x2e) {
    c = text.charCodeAt(++pos);
    if (!isDigit(c)) return fail(BAD_NUMBER, start);
    do c = text.charCodeAt(++pos);
    while (isDigit(c));
  }
  if (c === 0x65 || c === 0x45) {
    c = text.charCodeAt(++pos);
    if (c === 0x2b || c === 0x2d) c = text.charCodeAt(++pos);
    if (!isDigit(c)) return fail(BAD_NUMBER, start);
    do c = text.charCodeAt(++pos);
    while (isDigit(c));
  }
  return pos;
}

/** Validate `text`; throw `json-invalid` at the first problem. Iterative, O(n). */
function validate(text: string, maxDepth: number, maxKeys: number, maxStringLength: number): void {
  const len = text.length;
  // One frame per open container, indexed by depth - 1.
  const isArray: boolean[] = [];
  const keySets: Set<string>[] = [];
  /** Per frame: the current member's key, the current element's index, or undefined while reading a key. */
  const segments: (string | number | undefined)[] = [];
  let depth = 0;

  const refuse = (reason: string, at: number): never => {
    let pointer = '';
    for (let i = 0; i < depth; i++) {
      const s = segments[i];
      if (s === undefined) break;
      pointer += '/' + (typeof s === 'number' || SHOWABLE_KEY.test(s) ? s : '*');
    }
    throw invalid(reason, pointer, at);
  };

  /** Read `"key" :` at `p` into frame `top` (an object); returns the position of the value. */
  const readKey = (p: number, top: number): number => {
    segments[top] = undefined;
    if (text.charCodeAt(p) !== 0x22) return refuse(p >= len ? END : 'expected a string key', p);
    const end = scanString(text, p + 1, maxStringLength);
    if (end < 0) return refuse(failReason, failAt);
    // Escaped keys are rare: let JSON.parse decode the (already validated) literal.
    const key = sawEscape ? (JSON.parse(text.slice(p, end)) as string) : text.slice(p + 1, end - 1);
    const keys = keySets[top] as Set<string>;
    if (FORBIDDEN_KEYS.has(key)) {
      segments[top] = key;
      return refuse('forbidden key', p);
    }
    if (keys.has(key)) {
      segments[top] = key;
      return refuse('duplicate key', p);
    }
    if (keys.size >= maxKeys) return refuse('too many keys in object', p);
    keys.add(key);
    segments[top] = key;
    p = skipWs(text, end);
    if (text.charCodeAt(p) !== 0x3a) return refuse(p >= len ? END : 'expected ":"', p);
    return skipWs(text, p + 1);
  };

  /** Open a container frame at the current depth. */
  const open = (array: boolean, at: number): void => {
    if (depth >= maxDepth) refuse('nesting too deep', at);
    isArray[depth] = array;
    segments[depth] = array ? 0 : undefined;
    if (!array) {
      const keys = keySets[depth];
      if (keys === undefined) keySets[depth] = new Set();
      else keys.clear();
    }
    depth++;
  };

  let pos = skipWs(text, 0);
  if (text.charCodeAt(pos) !== 0x7b) refuse(pos >= len ? END : 'top-level value must be an object', pos);

  // Invariant at the top of this loop: `pos` is at the first character of a value.
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c === 0x7b || c === 0x5b) {
      const array = c === 0x5b;
      open(array, pos);
      pos = skipWs(text, pos + 1);
      if (text.charCodeAt(pos) === (array ? 0x5d : 0x7d)) {
        pos++; // empty container: a complete value
        depth--;
      } else {
        if (!array) pos = readKey(pos, depth - 1);
        continue;
      }
    } else if (c === 0x22) {
      pos = scanString(text, pos + 1, maxStringLength);
      if (pos < 0) refuse(failReason, failAt);
    } else if (c === 0x2d || isDigit(c)) {
      pos = scanNumber(text, pos);
      if (pos < 0) refuse(failReason, failAt);
    } else if (c === 0x74 && text.startsWith('true', pos)) {
      pos += 4;
    } else if (c === 0x66 && text.startsWith('false', pos)) {
      pos += 5;
    } else if (c === 0x6e && text.startsWith('null', pos)) {
      pos += 4;
    } else {
      refuse(pos >= len ? END : UNEXPECTED, pos);
    }

    // A value is complete: close containers until one continues with a comma.
    for (;;) {
      pos = skipWs(text, pos);
      if (depth === 0) {
        if (pos !== len) refuse('trailing characters after the top-level value', pos);
        return;
      }
      const top = depth - 1;
      const d = text.charCodeAt(pos);
      if (d === 0x2c) {
        pos = skipWs(text, pos + 1);
        if (isArray[top]) segments[top] = (segments[top] as number) + 1;
        else pos = readKey(pos, top);
        break;
      }
      if (d !== (isArray[top] ? 0x5d : 0x7d)) refuse(pos >= len ? END : UNEXPECTED, pos);
      pos++;
      depth--;
    }
  }
}
