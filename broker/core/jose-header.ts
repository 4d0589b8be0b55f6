import { LiaisonError } from './errors.js';
import { parseStrictJson } from './strict-json.js';

const B64URL = /^[A-Za-z0-9_-]*$/;
const dec = new TextDecoder('utf-8', { fatal: true });

/** Header parameters that would make us fetch or trust keys from the message itself (RFC 7515 4.1.2-4.1.6). Never honoured. */
export const KEY_BEARING = ['jku', 'jwk', 'x5u', 'x5c', 'x5t', 'x5t#S256'] as const;

export interface HeaderRules {
  what: 'JWE' | 'JWS';
  allowedAlgs: readonly string[];
  /** Every other parameter is refused: an allowlist, not a blocklist. */
  allowedParams: readonly string[];
}

export function b64urlDecode(part: string, what: string): Uint8Array {
  if (!B64URL.test(part) || part.length % 4 === 1)
    throw new LiaisonError('envelope-malformed', { detail: `${what} is not base64url` });
  return Buffer.from(part, 'base64url');
}

/**
 * Decode and check a protected header before any cryptography runs:
 * strict JSON, an allowlisted `alg`, no `zip` (RFC 7516 4.1.3), no `crit`
 * (we understand no extensions, RFC 7515 4.1.11), no key-bearing parameters.
 */
export function parseProtectedHeader(
  part: string,
  rules: HeaderRules,
): Record<string, unknown> & { alg: string; kid: string } {
  let header: unknown;
  try {
    header = parseStrictJson(dec.decode(b64urlDecode(part, `${rules.what} header`)), {
      maxBytes: 8192,
      maxDepth: 4,
      maxKeys: 32,
    });
  } catch (e) {
    if (e instanceof LiaisonError && e.code === 'envelope-malformed') throw e;
    throw new LiaisonError('envelope-malformed', {
      detail: `${rules.what} protected header is not strict JSON`,
      cause: e,
    });
  }
  const h = header as Record<string, unknown>;
  if (typeof h.alg !== 'string')
    throw new LiaisonError('envelope-malformed', { detail: `${rules.what} header has no alg` });
  if (!rules.allowedAlgs.includes(h.alg)) {
    throw new LiaisonError('alg-not-allowed', {
      publicDetail: `${rules.what} alg must be one of ${rules.allowedAlgs.join(', ')}`,
    });
  }
  if ('zip' in h)
    throw new LiaisonError('header-forbidden', { publicDetail: `${rules.what} header "zip" is not accepted` });
  if ('crit' in h)
    throw new LiaisonError('header-forbidden', {
      publicDetail: `${rules.what} header "crit" names extensions this broker does not understand`,
    });
  for (const p of KEY_BEARING) {
    if (p in h)
      throw new LiaisonError('header-forbidden', {
        publicDetail: `${rules.what} header "${p}" is never fetched or trusted`,
      });
  }
  for (const p of Object.keys(h)) {
    if (!rules.allowedParams.includes(p))
      throw new LiaisonError('header-forbidden', { publicDetail: `${rules.what} header parameter is not accepted` });
  }
  if (typeof h.kid !== 'string' || h.kid.length === 0 || h.kid.length > 128) {
    throw new LiaisonError('key-unknown', { publicDetail: `${rules.what} header must carry a kid` });
  }
  return h as Record<string, unknown> & { alg: string; kid: string };
}
