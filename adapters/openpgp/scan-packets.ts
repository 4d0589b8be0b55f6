import { LiaisonError } from '../../broker/core/errors.js';

/** Packet tags (RFC 9580 5). */
export const TAG = {
  pkesk: 1,
  signature: 2,
  skesk: 3,
  ops: 4,
  compressed: 8,
  sed: 9,
  marker: 10,
  literal: 11,
  seipd: 18,
  aead: 20,
  padding: 21,
} as const;

export interface ScannedPacket {
  tag: number;
  /** The packet body, partial-length chunks joined; only for packets no longer than `keepBodiesUpTo`. */
  body: Uint8Array | undefined;
  length: number;
  /** Offsets of the whole packet (header included) in the scanned bytes. */
  start: number;
  end: number;
}

const malformed = (detail: string) => new LiaisonError('envelope-malformed', { publicDetail: detail });

/**
 * A bounded walk over a binary packet sequence (RFC 9580 4.2: old and new
 * headers, partial body lengths), made before any packet is parsed by
 * openpgp.js: it gives the tags and counts the policy needs, and refuses more
 * than `maxPackets` packets. Only small bodies are kept (session key packets).
 */
export function scanPackets(bytes: Uint8Array, opts: { maxPackets: number; keepBodiesUpTo: number }): ScannedPacket[] {
  const out: ScannedPacket[] = [];
  let pos = 0;
  const byte = () => {
    if (pos >= bytes.length) throw malformed('a packet header is truncated');
    return bytes[pos++] as number;
  };
  const take = (n: number) => {
    if (n > bytes.length - pos) throw malformed('a packet is truncated');
    const s = bytes.subarray(pos, pos + n);
    pos += n;
    return s;
  };
  while (pos < bytes.length) {
    if (out.length >= opts.maxPackets)
      throw new LiaisonError('openpgp-limits', { publicDetail: `more than ${opts.maxPackets} packets` });
    const start = pos;
    const first = byte();
    if ((first & 0x80) === 0) throw malformed('not an OpenPGP packet sequence');
    const chunks: Uint8Array[] = [];
    let tag: number;
    if (first & 0x40) {
      // New format (RFC 9580 4.2.1).
      tag = first & 0x3f;
      for (;;) {
        const l = byte();
        if (l < 192) {
          chunks.push(take(l));
          break;
        } else if (l < 224) {
          chunks.push(take(((l - 192) << 8) + byte() + 192));
          break;
        } else if (l === 255) {
          chunks.push(take(((byte() << 24) >>> 0) + (byte() << 16) + (byte() << 8) + byte()));
          break;
        }
        // Partial body length: only data packets may use it (RFC 9580 4.2.1.4).
        if (![TAG.compressed, TAG.sed, TAG.literal, TAG.seipd, TAG.aead].includes(tag as 8))
          throw malformed('partial lengths on a non-data packet');
        chunks.push(take(1 << (l & 0x1f)));
      }
    } else {
      // Legacy format (RFC 9580 4.2.2).
      tag = (first >> 2) & 0x0f;
      const type = first & 0x03;
      const n =
        type === 0
          ? byte()
          : type === 1
            ? (byte() << 8) + byte()
            : type === 2
              ? ((byte() << 24) >>> 0) + (byte() << 16) + (byte() << 8) + byte()
              : bytes.length - pos;
      chunks.push(take(n));
    }
    const length = chunks.reduce((s, c) => s + c.length, 0);
    out.push({ tag, length, start, end: pos, body: length <= opts.keepBodiesUpTo ? Buffer.concat(chunks) : undefined });
  }
  return out;
}
