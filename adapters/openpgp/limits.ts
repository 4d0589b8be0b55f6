/**
 * Bounds on the work an OpenPGP envelope may cause, checked before and while
 * it is opened. Every breach is the `openpgp-limits` problem (400), except a
 * body over the HTTP body limit, which Fastify refuses first (`too-large`).
 */
export interface OpenPgpLimits {
  /** Largest ASCII-armored message accepted (bytes of the request body). */
  maxArmorBytes: number;
  /** Armor header lines ("Version:", "Comment:", ...) allowed after the BEGIN line. */
  maxArmorHeaders: number;
  /** Public-key encrypted session key packets (recipients) allowed; GnuPG users often add themselves. */
  maxRecipients: number;
  /** Largest decrypted, decompressed content (openpgp.js maxDecompressedMessageSize): the compression-bomb bound. */
  maxPlaintextBytes: number;
}

export const DEFAULT_OPENPGP_LIMITS: Readonly<OpenPgpLimits> = Object.freeze({
  maxArmorBytes: 1024 * 1024,
  maxArmorHeaders: 8,
  maxRecipients: 8,
  maxPlaintextBytes: 1024 * 1024,
});
