/**
 * The jose-e2e wire format (docs/end-to-end.md), as the gateway, the router,
 * the audit and agency clients read it: the posted envelope
 * `{"header": <compact JWS>, "body": <JWE General JSON Serialization, as a string>}`
 * and the strict shape of that JWE. Pure: no key is used here.
 */
import { LiaisonError } from '../../broker/core/errors.js';
import { b64urlDecode, KEY_BEARING } from '../../broker/core/jose-header.js';
import { parseStrictJson } from '../../broker/core/strict-json.js';

export const E2E_MEDIA_TYPE = 'application/liaison-e2e+json';
/** `typ` of the routing header JWS: never mistaken for a notice JWS (`liaison-notice+jws`). */
export const ROUTING_HEADER_TYP = 'liaison-e2e-header+jws';
/** The JWE's protected header, exactly: one content encryption, and what the plaintext is. */
export const E2E_ENC = 'A256GCM';
export const E2E_CTY = 'liaison-notice+jws';
export const E2E_ALG = 'ECDH-ES+A256KW';
/** At most this many recipients in one body (an operation has at most 1000 members). */
export const MAX_E2E_RECIPIENTS = 1000;

const malformed = (publicDetail: string) => new LiaisonError('envelope-malformed', { publicDetail });
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const B64URL = /^[A-Za-z0-9_-]+$/;
const dec = new TextDecoder('utf-8', { fatal: true });

/** The posted envelope: exactly the two strings. */
export interface E2eEnvelope {
  header: string;
  body: string;
}

export function parseE2eEnvelope(text: string | Uint8Array, maxBytes: number): E2eEnvelope {
  let v: unknown;
  try {
    v = parseStrictJson(text, { maxBytes, maxDepth: 2, maxKeys: 2 });
  } catch (e) {
    if (e instanceof LiaisonError && e.code === 'too-large') throw e;
    throw malformed('an end-to-end envelope is a JSON object {"header", "body"}');
  }
  if (!isObj(v) || Object.keys(v).length !== 2 || typeof v.header !== 'string' || typeof v.body !== 'string')
    throw malformed('an end-to-end envelope is a JSON object with exactly two strings, "header" and "body"');
  return { header: v.header, body: v.body };
}

/** One entry of the JWE's recipients, as checked. */
export interface E2eRecipient {
  kid: string;
  epk: Record<string, string>;
  encrypted_key: string;
}

export interface ParsedE2eBody {
  recipients: E2eRecipient[];
}

const b64len = (v: unknown, bytes: number | undefined, what: string): string => {
  if (typeof v !== 'string' || !B64URL.test(v)) throw malformed(`${what} must be base64url`);
  const n = b64urlDecode(v, what).length;
  if (bytes !== undefined && n !== bytes) throw malformed(`${what} must be ${bytes} bytes`);
  if (n === 0) throw malformed(`${what} must not be empty`);
  return v;
};

function exactKeys(o: Record<string, unknown>, allowed: readonly string[], required: readonly string[], what: string) {
  for (const k of Object.keys(o)) {
    if ((KEY_BEARING as readonly string[]).includes(k) || k === 'zip' || k === 'crit')
      throw new LiaisonError('header-forbidden', { publicDetail: `${what} "${k}" is not accepted` });
    if (!allowed.includes(k))
      throw new LiaisonError('header-forbidden', { publicDetail: `${what} has a member that is not accepted` });
  }
  for (const k of required) if (!(k in o)) throw malformed(`${what} has no "${k}"`);
}

function checkEpk(v: unknown): Record<string, string> {
  if (!isObj(v)) throw malformed('recipients[].header.epk must be a public JWK');
  if (v.kty === 'OKP' && v.crv === 'X25519') {
    exactKeys(v, ['kty', 'crv', 'x'], ['x'], 'epk');
    return { kty: 'OKP', crv: 'X25519', x: b64len(v.x, 32, 'epk.x') };
  }
  if (v.kty === 'EC' && v.crv === 'P-256') {
    exactKeys(v, ['kty', 'crv', 'x', 'y'], ['x', 'y'], 'epk');
    return { kty: 'EC', crv: 'P-256', x: b64len(v.x, 32, 'epk.x'), y: b64len(v.y, 32, 'epk.y') };
  }
  throw new LiaisonError('alg-not-allowed', { publicDetail: 'epk must be an X25519 or P-256 public key' });
}

/**
 * The body: RFC 7516 General JSON Serialization only (no flattened form, no
 * `unprotected`, no `aad`), the protected header exactly {enc: A256GCM, cty}
 * (plus the `epk` when there is exactly one recipient and its header has none),
 * each recipient exactly {header: {alg: ECDH-ES+A256KW, kid, epk}, encrypted_key},
 * kids distinct, sizes bounded. The content is checked for shape only: the
 * gateway holds no key that opens it.
 */
export function parseE2eBody(body: string, maxBytes: number): ParsedE2eBody {
  let v: unknown;
  try {
    v = parseStrictJson(body, { maxBytes, maxDepth: 5, maxKeys: 6 * MAX_E2E_RECIPIENTS + 16 });
  } catch (e) {
    if (e instanceof LiaisonError && e.code === 'too-large') throw e;
    throw malformed('the body is not a JWE in General JSON Serialization');
  }
  if (!isObj(v)) throw malformed('the body is not a JWE in General JSON Serialization');
  if ('header' in v || 'encrypted_key' in v)
    throw malformed('the body must use the General JSON Serialization (a recipients array), not the flattened one');
  if ('unprotected' in v || 'aad' in v)
    throw new LiaisonError('header-forbidden', {
      publicDetail: 'the body may carry no "unprotected" header and no "aad"',
    });
  exactKeys(
    v,
    ['protected', 'recipients', 'iv', 'ciphertext', 'tag'],
    ['protected', 'recipients', 'iv', 'ciphertext', 'tag'],
    'the body',
  );
  let prot: unknown;
  try {
    prot = parseStrictJson(dec.decode(b64urlDecode(b64len(v.protected, undefined, 'protected'), 'protected')), {
      maxBytes: 1024,
      maxDepth: 2,
      maxKeys: 8,
    });
  } catch (e) {
    if (e instanceof LiaisonError && e.code !== 'json-invalid') throw e;
    throw malformed('the protected header is not strict JSON');
  }
  if (!isObj(prot)) throw malformed('the protected header is not a JSON object');
  // One recipient: libraries (jose among them) put its epk in the protected header; then there, and only then.
  exactKeys(prot, ['enc', 'cty', 'epk'], ['enc', 'cty'], 'the protected header');
  if (prot.enc !== E2E_ENC) throw new LiaisonError('alg-not-allowed', { publicDetail: `enc must be ${E2E_ENC}` });
  if (prot.cty !== E2E_CTY) throw malformed(`cty must be ${E2E_CTY}`);
  const sharedEpk = 'epk' in prot ? checkEpk(prot.epk) : undefined;
  b64len(v.iv, 12, 'iv');
  b64len(v.tag, 16, 'tag');
  b64len(v.ciphertext, undefined, 'ciphertext');
  if (!Array.isArray(v.recipients) || v.recipients.length === 0 || v.recipients.length > MAX_E2E_RECIPIENTS)
    throw malformed(`recipients must be an array of 1 to ${MAX_E2E_RECIPIENTS} entries`);
  if (sharedEpk && v.recipients.length !== 1)
    throw malformed('epk may be in the protected header only when there is one recipient');
  const kids = new Set<string>();
  const recipients = v.recipients.map((r: unknown): E2eRecipient => {
    if (!isObj(r)) throw malformed('each recipient is an object {header, encrypted_key}');
    exactKeys(r, ['header', 'encrypted_key'], ['header', 'encrypted_key'], 'a recipient');
    const h = r.header;
    if (!isObj(h)) throw malformed('recipients[].header must be an object');
    exactKeys(h, ['alg', 'kid', 'epk'], sharedEpk ? ['alg', 'kid'] : ['alg', 'kid', 'epk'], 'a recipient header');
    if (sharedEpk && 'epk' in h) throw malformed('epk is in the protected header and in a recipient header');
    if (h.alg !== E2E_ALG)
      throw new LiaisonError('alg-not-allowed', { publicDetail: `recipients[].header.alg must be ${E2E_ALG}` });
    if (typeof h.kid !== 'string' || h.kid.length === 0 || h.kid.length > 128)
      throw malformed('recipients[].header.kid must be a key id');
    if (kids.has(h.kid))
      throw new LiaisonError('recipients-mismatch', { publicDetail: 'a kid has two recipient entries' });
    kids.add(h.kid);
    // A256KW of a 256-bit content key: 40 bytes.
    return {
      kid: h.kid,
      epk: sharedEpk ?? checkEpk(h.epk),
      encrypted_key: b64len(r.encrypted_key, 40, 'encrypted_key'),
    };
  });
  return { recipients };
}
