/**
 * Looks for marker strings everywhere the hub keeps data: every message of
 * every JetStream stream (KV buckets included: they are streams), in its data,
 * headers and subject; raw, inside JSON strings, inside base64/base64url
 * tokens and OpenPGP literal data (armored or binary, decompressed), nested.
 * For tests that show no stream holds what a notice says: sealed at rest, and
 * end to end.
 */
import type { JetStreamManager } from 'nats';
import { readMessage } from 'openpgp';

const TOKEN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;

/** Where one of `markers` hides in `bytes`, or null. */
export async function findMarker(bytes: Uint8Array, markers: readonly string[], depth = 0): Promise<string | null> {
  const buf = Buffer.from(bytes);
  if (markers.some((m) => buf.includes(Buffer.from(m, 'utf8')))) return 'raw';
  if (depth > 4 || buf.length === 0) return null;
  const text = buf.toString('utf8');
  // JSON: JSON.parse undoes \u escapes (an Arabic marker may be stored as \u0639...).
  try {
    const strings: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') strings.push(v);
      else if (v && typeof v === 'object')
        for (const [k, x] of Object.entries(v)) {
          strings.push(k);
          walk(x);
        }
    };
    walk(JSON.parse(text));
    for (const s of strings) {
      const where = await findMarker(Buffer.from(s, 'utf8'), markers, depth + 1);
      if (where) return `json string > ${where}`;
    }
  } catch {
    // not JSON
  }
  // OpenPGP (armored or binary): the literal data, decompressed.
  if (text.includes('-----BEGIN PGP') || (buf[0]! & 0x80) !== 0) {
    try {
      const msg = text.includes('-----BEGIN PGP')
        ? await readMessage({ armoredMessage: text.slice(text.indexOf('-----BEGIN PGP')) })
        : await readMessage({ binaryMessage: buf });
      const literal = msg.getLiteralData();
      if (literal instanceof Uint8Array) {
        const where = await findMarker(literal, markers, depth + 1);
        if (where) return `openpgp literal data > ${where}`;
      }
    } catch {
      // not an OpenPGP message, or an encrypted one (ciphertext)
    }
  }
  for (const tok of text.match(TOKEN) ?? []) {
    for (const enc of ['base64url', 'base64'] as const) {
      const decoded = Buffer.from(tok, enc);
      if (decoded.length < 8) continue;
      const where = await findMarker(decoded, markers, depth + 1);
      if (where) return `${enc} token > ${where}`;
    }
  }
  return null;
}

/** Every place in every stream a marker is found, how many messages were scanned, and the streams. */
export async function scanStreams(
  jsm: JetStreamManager,
  markers: readonly string[],
): Promise<{ found: string[]; messages: number; streams: string[] }> {
  const found: string[] = [];
  const streams: string[] = [];
  let messages = 0;
  for await (const s of jsm.streams.list()) {
    streams.push(s.config.name);
    const { first_seq, last_seq } = s.state;
    for (let seq = first_seq; seq > 0 && seq <= last_seq; seq++) {
      let m;
      try {
        m = await jsm.streams.getMessage(s.config.name, { seq });
      } catch {
        continue; // deleted
      }
      messages++;
      const where = await findMarker(m.data, markers);
      if (where) found.push(`${s.config.name}#${seq} data: ${where}`);
      for (const [k, vs] of m.header ?? [])
        for (const v of vs) {
          const hw = await findMarker(Buffer.from(v, 'utf8'), markers);
          if (hw) found.push(`${s.config.name}#${seq} header ${k}: ${hw}`);
        }
      const sw = await findMarker(Buffer.from(m.subject, 'utf8'), markers);
      if (sw) found.push(`${s.config.name}#${seq} subject: ${sw}`);
    }
  }
  return { found, messages, streams };
}
