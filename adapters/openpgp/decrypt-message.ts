import {
  config as defaultConfig,
  decryptSessionKeys,
  enums,
  readMessage,
  type Message,
  type PrivateKey,
  type SessionKey,
} from 'openpgp';
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
  for (let c = e, i = 0; c instanceof Error && i < 8; c = c.cause, i++)
    if (name.test(c.name) || name.test(c.constructor.name)) return true;
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
 * Ciphers a message may be encrypted with: AES only. openpgp.js still decrypts
 * TripleDES, CAST5, Blowfish, IDEA and Twofish for old messages (RFC 9580 9.3
 * keeps them for reading only), and GnuPG encrypts with them on request.
 */
const ALLOWED_CIPHERS: ReadonlySet<number> = new Set([
  enums.symmetric.aes128,
  enums.symmetric.aes192,
  enums.symmetric.aes256,
]);

/** The cipher of a decrypted session key; for SEIPD v2 (RFC 9580 5.13.2) it is named by the data packet, not the key. */
function cipherOf(key: { algorithm: string | null }, message: Message<Uint8Array>): number | undefined {
  if (key.algorithm !== null) return (enums.symmetric as unknown as Record<string, number>)[key.algorithm];
  const seipd = message.packets.find(
    (p) => (p.constructor as { tag?: number }).tag === enums.packet.symEncryptedIntegrityProtectedData,
  ) as unknown as { cipherAlgorithm?: number } | undefined;
  return seipd?.cipherAlgorithm;
}

/**
 * Step 2 (OpenPGP): the packet sequence is checked before openpgp.js parses it:
 * 1..maxRecipients public-key session key packets (v3, RFC 9580 5.1), then exactly
 * one integrity-protected data packet (SEIPD, tag 18), and nothing else (no
 * password-encrypted session keys, no unprotected tag 9 data). At least one
 * session key must name a broker key (or be anonymous), else `key-unknown`.
 * Then the broker's keys decrypt the session key, whose cipher must be AES
 * (`alg-not-allowed` otherwise), and it the data; any failure is the same `decrypt-failed`.
 */
export async function decryptMessage(
  binary: Uint8Array,
  keys: readonly PrivateKey[],
  limits: OpenPgpLimits,
  cfg: typeof defaultConfig,
): Promise<Message<Uint8Array>> {
  const packets = scanPackets(binary, { maxPackets: limits.maxRecipients + 1, keepBodiesUpTo: 4096 });
  const pkesks = packets.filter((p) => p.tag === TAG.pkesk);
  const last = packets[packets.length - 1];
  if (pkesks.length > limits.maxRecipients)
    throw new LiaisonError('openpgp-limits', { publicDetail: `more than ${limits.maxRecipients} recipients` });
  if (packets.some((p) => p.tag === TAG.sed))
    throw new LiaisonError('alg-not-allowed', {
      publicDetail: 'encrypted data without integrity protection (tag 9) is refused',
    });
  if (packets.some((p) => p.tag === TAG.skesk))
    throw new LiaisonError('alg-not-allowed', {
      publicDetail: 'password-encrypted messages are refused; encrypt to the broker key',
    });
  if (!last || last.tag !== TAG.seipd || pkesks.length !== packets.length - 1 || pkesks.length === 0) {
    throw new LiaisonError('envelope-malformed', {
      publicDetail:
        'expected public-key encrypted session keys followed by one integrity-protected data packet (a message encrypted to the broker)',
    });
  }
  const brokerIds = new Set(keys.flatMap((k) => k.getKeyIDs().map((id) => id.toHex().toUpperCase())));
  const named = pkesks.map((p) =>
    p.body && p.body[0] === 3 && p.body.length > 9
      ? Buffer.from(p.body.subarray(1, 9)).toString('hex').toUpperCase()
      : undefined,
  );
  if (!named.some((id) => id !== undefined && (brokerIds.has(id) || id === '0000000000000000'))) {
    throw new LiaisonError('key-unknown', {
      publicDetail: "the message is not encrypted to the broker's OpenPGP key; fetch GET /v1/keys (openpgp)",
    });
  }
  let message: Message<Uint8Array>;
  try {
    message = await readMessage({ binaryMessage: binary, config: cfg });
  } catch (e) {
    throw new LiaisonError('envelope-malformed', { publicDetail: 'the OpenPGP message cannot be parsed', cause: e });
  }
  let sessionKeys: SessionKey[];
  try {
    const decrypted = await decryptSessionKeys({ message, decryptionKeys: [...keys], config: cfg });
    sessionKeys = decrypted.map((k) => {
      const cipher = cipherOf(k, message);
      if (cipher === undefined || !ALLOWED_CIPHERS.has(cipher))
        throw new LiaisonError('alg-not-allowed', {
          publicDetail: `the message is encrypted with ${cipher === undefined ? 'an unknown cipher' : enums.read(enums.symmetric, cipher)}; only AES (128, 192 or 256) is accepted`,
        });
      return { data: k.data, algorithm: enums.read(enums.symmetric, cipher) };
    });
  } catch (e) {
    if (e instanceof LiaisonError) throw e;
    throw new LiaisonError('decrypt-failed', {
      detail: `OpenPGP session key decryption failed: ${e instanceof Error ? e.name : 'error'}`,
      cause: e,
    });
  }
  try {
    return (await message.decrypt(undefined, undefined, sessionKeys, undefined, cfg)) as Message<Uint8Array>;
  } catch (e) {
    if (isDecompressionLimit(e))
      throw new LiaisonError('openpgp-limits', {
        publicDetail: `the decompressed content is larger than ${limits.maxPlaintextBytes} bytes`,
        cause: e,
      });
    // Packets are parsed only after the integrity check (MDC) passed: a grammar error here is the sender's structure, not an oracle.
    if (errorNamed(e, /^(GrammarError|MalformedPacketError|UnsupportedError)$/)) {
      throw new LiaisonError('envelope-malformed', {
        publicDetail:
          'the decrypted content is not one signed message (signature, literal data, optionally compressed)',
        cause: e,
      });
    }
    throw new LiaisonError('decrypt-failed', {
      detail: `OpenPGP decryption failed: ${e instanceof Error ? e.name : 'error'}`,
      cause: e,
    });
  }
}

export { enums };
