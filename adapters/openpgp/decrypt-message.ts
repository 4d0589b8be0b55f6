import { config as defaultConfig, enums, readMessage, type Message, type PrivateKey } from 'openpgp';
import { LiaisonError } from '../../broker/core/errors.js';
import type { OpenPgpLimits } from './limits.js';
import { scanPackets, TAG } from './scan-packets.js';

/** openpgp.js settings for hostile input: grammar enforced, no unknown or malformed packet skipped, no unauthenticated data, bounded decompression. */
export function strictConfig(limits: Pick<OpenPgpLimits, 'maxPlaintextBytes'>): typeof defaultConfig {
  return {
    ...defaultConfig,
    enforceGrammar: true,
    ignoreUnsupportedPackets: false,
    ignoreMalformedPackets: false,
    allowUnauthenticatedMessages: false,
    allowUnauthenticatedStream: false,
    additionalAllowedPackets: [],
    maxDecompressedMessageSize: limits.maxPlaintextBytes,
  };
}

const errorNamed = (e: unknown, name: RegExp): boolean => {
  for (let c = e, i = 0; c instanceof Error && i < 8; c = c.cause, i++) if (name.test(c.name) || name.test(c.constructor.name)) return true;
  return false;
};

/** True when an error (or one of its causes) is openpgp.js's decompression bound. */
const isDecompressionLimit = (e: unknown): boolean => {
  for (let c = e, i = 0; c instanceof Error && i < 8; c = c.cause, i++) {
    if (/decompressed message size exceeded/i.test(c.message)) return true;
  }
  return false;
};

/**
 * Step 2 (OpenPGP): the packet sequence is checked before openpgp.js parses it:
 * 1..maxRecipients public-key session key packets (v3, RFC 9580 5.1), then exactly
 * one integrity-protected data packet (SEIPD, tag 18), and nothing else (no
 * password-encrypted session keys, no unprotected tag 9 data). At least one
 * session key must name a broker key (or be anonymous), else `key-unknown`.
 * Then the broker's keys decrypt it; any failure is the same `decrypt-failed`.
 */
export async function decryptMessage(binary: Uint8Array, keys: readonly PrivateKey[], limits: OpenPgpLimits, cfg: typeof defaultConfig): Promise<Message<Uint8Array>> {
  const packets = scanPackets(binary, { maxPackets: limits.maxRecipients + 1, keepBodiesUpTo: 4096 });
  const pkesks = packets.filter((p) => p.tag === TAG.pkesk);
  const last = packets[packets.length - 1];
  if (pkesks.length > limits.maxRecipients) throw new LiaisonError('openpgp-limits', { publicDetail: `more than ${limits.maxRecipients} recipients` });
  if (packets.some((p) => p.tag === TAG.sed)) throw new LiaisonError('alg-not-allowed', { publicDetail: 'encrypted data without integrity protection (tag 9) is refused' });
  if (packets.some((p) => p.tag === TAG.skesk)) throw new LiaisonError('alg-not-allowed', { publicDetail: 'password-encrypted messages are refused; encrypt to the broker key' });
  if (!last || last.tag !== TAG.seipd || pkesks.length !== packets.length - 1 || pkesks.length === 0) {
    throw new LiaisonError('envelope-malformed', { publicDetail: 'expected public-key encrypted session keys followed by one integrity-protected data packet (a message encrypted to the broker)' });
  }
  const brokerIds = new Set(keys.flatMap((k) => k.getKeyIDs().map((id) => id.toHex().toUpperCase())));
  const named = pkesks.map((p) => (p.body && p.body[0] === 3 && p.body.length > 9 ? Buffer.from(p.body.subarray(1, 9)).toString('hex').toUpperCase() : undefined));
  if (!named.some((id) => id !== undefined && (brokerIds.has(id) || id === '0000000000000000'))) {
    throw new LiaisonError('key-unknown', { publicDetail: "the message is not encrypted to the broker's OpenPGP key; fetch GET /v1/keys (openpgp)" });
  }
  let message: Message<Uint8Array>;
  try {
    message = await readMessage({ binaryMessage: binary, config: cfg });
  } catch (e) {
    throw new LiaisonError('envelope-malformed', { publicDetail: 'the OpenPGP message cannot be parsed', cause: e });
  }
  try {
    return (await message.decrypt([...keys], undefined, undefined, undefined, cfg)) as Message<Uint8Array>;
  } catch (e) {
    if (isDecompressionLimit(e)) throw new LiaisonError('openpgp-limits', { publicDetail: `the decompressed content is larger than ${limits.maxPlaintextBytes} bytes`, cause: e });
    // Packets are parsed only after the integrity check (MDC) passed: a grammar error here is the sender's structure, not an oracle.
    if (errorNamed(e, /^(GrammarError|MalformedPacketError|UnsupportedError)$/)) {
      throw new LiaisonError('envelope-malformed', { publicDetail: 'the decrypted content is not one signed message (signature, literal data, optionally compressed)', cause: e });
    }
    throw new LiaisonError('decrypt-failed', { detail: `OpenPGP decryption failed: ${e instanceof Error ? e.name : 'error'}`, cause: e });
  }
}

export { enums };
