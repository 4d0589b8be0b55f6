/**
 * The openpgp-e2e wire format (docs/end-to-end.md), as the gateway, the
 * router, the audit and agency clients read it: the posted envelope
 * `{"header": <armored signed message>, "body": <armored encrypted message>}`
 * (the jose-e2e envelope's shape, adapters/e2e-jose/wire.ts) and the strict
 * packet shapes of both. Pure: no key is used here.
 */
import { LiaisonError } from '../../broker/core/errors.js';
import { MAX_E2E_RECIPIENTS } from '../e2e-jose/wire.js';
import { dearmorMessage } from '../openpgp/dearmor.js';
import { DEFAULT_OPENPGP_LIMITS } from '../openpgp/limits.js';
import { scanPackets, TAG } from '../openpgp/scan-packets.js';

export { parseE2eEnvelope as parseE2ePgpEnvelope } from '../e2e-jose/wire.js';

export const E2E_PGP_MEDIA_TYPE = 'application/liaison-e2e-pgp+json';
/** The armored header of both strings: how a reader tells this envelope from a jose-e2e one. */
export const ARMORED_MESSAGE = '-----BEGIN PGP MESSAGE-----';
/** The anonymous recipient key id (RFC 9580 5.1.1): it hides whom a session key is for. */
const WILDCARD = '0000000000000000';

const malformed = (publicDetail: string) => new LiaisonError('envelope-malformed', { publicDetail });
const armorLimits = (maxBytes: number) => ({
  maxArmorBytes: maxBytes,
  maxArmorHeaders: DEFAULT_OPENPGP_LIMITS.maxArmorHeaders,
});

/**
 * The header: an armored one-pass signed message, exactly three packets
 * (one-pass signature, literal data, signature), nothing compressed, nothing
 * encrypted. Its binary form, for openpgp.js to verify (adapters/openpgp/verify-message.ts).
 */
export function parseHeaderMessage(header: string, maxBytes: number): Uint8Array {
  const binary = dearmorMessage(header, armorLimits(maxBytes));
  const tags = scanPackets(binary, { maxPackets: 3, keepBodiesUpTo: 0 }).map((p) => p.tag);
  if (tags.join(',') !== [TAG.ops, TAG.literal, TAG.signature].join(','))
    throw malformed(
      'the header must be a one-pass signed message (one-pass signature, literal data, signature), uncompressed',
    );
  return binary;
}

/** What the body's packets say, without decrypting it. */
export interface ParsedE2ePgpBody {
  /** The recipient key ids of its session key packets (16 upper-case hex digits), distinct, in order. */
  keyIds: string[];
}

/**
 * The body: an armored message of 1..MAX_E2E_RECIPIENTS v3 public-key
 * encrypted session keys (RFC 9580 5.1), each naming its recipient key (no
 * wildcard), then exactly one integrity-protected data packet (tag 18), and
 * nothing else: no password session keys, no unprotected data (tag 9), no
 * compression or literal data outside the encryption.
 */
export function parseE2ePgpBody(body: string, maxBytes: number): ParsedE2ePgpBody {
  const binary = dearmorMessage(body, armorLimits(maxBytes));
  const packets = scanPackets(binary, { maxPackets: MAX_E2E_RECIPIENTS + 1, keepBodiesUpTo: 4096 });
  const last = packets[packets.length - 1];
  const pkesks = packets.slice(0, -1);
  if (!last || last.tag !== TAG.seipd || pkesks.length === 0 || pkesks.some((p) => p.tag !== TAG.pkesk))
    throw malformed(
      'the body must be public-key encrypted session keys followed by one integrity-protected data packet, and nothing else',
    );
  const keyIds: string[] = [];
  for (const p of pkesks) {
    if (!p.body || p.body[0] !== 3 || p.body.length < 10)
      throw malformed('each session key packet must be a version 3 public-key encrypted session key');
    const id = Buffer.from(p.body.subarray(1, 9)).toString('hex').toUpperCase();
    if (id === WILDCARD)
      throw new LiaisonError('recipients-mismatch', {
        publicDetail: 'a session key is for an anonymous (wildcard) recipient; name each recipient key',
      });
    if (keyIds.includes(id))
      throw new LiaisonError('recipients-mismatch', { publicDetail: 'a key id has two session key packets' });
    keyIds.push(id);
  }
  return { keyIds };
}

/** Whether `text` looks like an openpgp-e2e envelope's header (for telling the two e2e forms apart). */
export const isArmoredMessage = (text: string): boolean => text.trimStart().startsWith(ARMORED_MESSAGE);
