import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { publicPart } from '../../broker/keys/jwk.js';

/** test/interop/jwcrypto_tool.py: python3-jwcrypto, an independent JOSE implementation. */
export const JWCRYPTO_TOOL = join(import.meta.dirname, '..', 'interop', 'jwcrypto_tool.py');

/**
 * python3-jwcrypto opens an end-to-end delivery as a recipient holding
 * `privateJwk`, verifying the origin's signatures with the public part of
 * `originSigningJwk` (`open-e2e`); status 0 and {header, notice} on stdout, else
 * the reason on stderr.
 */
export function openE2eWithJwcrypto(envelope: string, privateJwk: JWK, originSigningJwk: JWK) {
  return spawnSync('/usr/bin/python3', [JWCRYPTO_TOOL, 'open-e2e'], {
    input: JSON.stringify({ envelope, private_jwk: privateJwk, origin_jwk: publicPart(originSigningJwk) }),
    encoding: 'utf8',
    timeout: 30_000,
  });
}
