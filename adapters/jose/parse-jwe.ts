import { LiaisonError } from '../../broker/core/errors.js';
import { parseProtectedHeader } from '../../broker/core/jose-header.js';

export const JWE_ALGS = ['ECDH-ES', 'ECDH-ES+A256KW'] as const;
export const JWE_ENCS = ['A256GCM'] as const;
const JWE_PARAMS = ['alg', 'enc', 'kid', 'epk', 'apu', 'apv', 'typ', 'cty'];

export interface ParsedJwe {
  compact: string;
  header: Record<string, unknown> & { alg: string; kid: string; enc: string };
}

/** Step 1 (JOSE): a compact JWE (RFC 7516 7.1) with an acceptable protected header. */
export function parseCompactJwe(body: string): ParsedJwe {
  const compact = body.trim();
  const parts = compact.split('.');
  if (parts.length !== 5) {
    throw new LiaisonError('envelope-malformed', {
      publicDetail:
        parts.length === 3
          ? 'expected a JWE (encrypted to the broker), got a JWS'
          : 'expected a compact JWE with five parts',
    });
  }
  const header = parseProtectedHeader(parts[0] as string, {
    what: 'JWE',
    allowedAlgs: JWE_ALGS,
    allowedParams: JWE_PARAMS,
  });
  if (typeof header.enc !== 'string' || !(JWE_ENCS as readonly string[]).includes(header.enc)) {
    throw new LiaisonError('alg-not-allowed', { publicDetail: `JWE enc must be ${JWE_ENCS.join(', ')}` });
  }
  if (header.alg === 'ECDH-ES' && parts[1] !== '')
    throw new LiaisonError('envelope-malformed', { publicDetail: 'ECDH-ES (direct) must have an empty encrypted key' });
  return { compact, header: header as ParsedJwe['header'] };
}
