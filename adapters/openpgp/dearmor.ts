import { LiaisonError } from '../../broker/core/errors.js';
import type { OpenPgpLimits } from './limits.js';

const BEGIN = '-----BEGIN PGP MESSAGE-----';
const END = '-----END PGP MESSAGE-----';
const HEADER = /^[A-Za-z][A-Za-z0-9-]{0,63}: [^\r\n]{0,1024}$/;
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const CRC_LINE = /^=[A-Za-z0-9+/]{4}$/;

/** CRC-24 of RFC 4880 6.1 (the optional armor checksum), a byte at a time through a 256-entry table (the bit-wise loop was ~11 % of the OpenPGP ceiling's profile). */
const CRC24_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 16;
    for (let k = 0; k < 8; k++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
    table[i] = crc & 0xffffff;
  }
  return table;
})();

export function crc24(bytes: Uint8Array): number {
  let crc = 0xb704ce;
  for (let i = 0; i < bytes.length; i++) crc = ((crc << 8) ^ CRC24_TABLE[((crc >> 16) ^ bytes[i]!) & 0xff]!) & 0xffffff;
  return crc;
}

/**
 * Step 1a (OpenPGP): exactly one ASCII-armored "PGP MESSAGE" block (RFC 4880 6.2,
 * RFC 9580 6.2), nothing before or after it but whitespace, a bounded number of
 * armor headers, strict base64, and the CRC-24 checked when present. Cleartext
 * signatures, key blocks and binary bodies are refused here.
 */
export function dearmorMessage(
  body: string,
  limits: Pick<OpenPgpLimits, 'maxArmorBytes' | 'maxArmorHeaders'>,
): Uint8Array {
  if (body.length > limits.maxArmorBytes)
    throw new LiaisonError('openpgp-limits', {
      publicDetail: `the armored message is larger than ${limits.maxArmorBytes} bytes`,
    });
  const lines = body
    .trim()
    .split(/\r?\n/)
    .map((l) => l.replace(/[ \t]+$/, ''));
  if (lines[0] !== BEGIN) {
    const publicDetail = lines[0]?.startsWith('-----BEGIN PGP SIGNED MESSAGE')
      ? 'a cleartext-signed message is not encrypted to the broker'
      : 'expected one ASCII-armored PGP MESSAGE block';
    throw new LiaisonError('envelope-malformed', { publicDetail });
  }
  if (lines[lines.length - 1] !== END || lines.indexOf(END) !== lines.length - 1) {
    throw new LiaisonError('envelope-malformed', {
      publicDetail: 'expected exactly one ASCII-armored PGP MESSAGE block',
    });
  }
  let i = 1;
  for (; i < lines.length - 1 && lines[i] !== ''; i++) {
    if (i > limits.maxArmorHeaders)
      throw new LiaisonError('openpgp-limits', { publicDetail: `more than ${limits.maxArmorHeaders} armor headers` });
    if (!HEADER.test(lines[i] as string))
      throw new LiaisonError('envelope-malformed', { publicDetail: 'an armor header line is malformed' });
  }
  if (lines[i] !== '')
    throw new LiaisonError('envelope-malformed', { publicDetail: 'the armor has no blank line before its body' });
  const data = lines.slice(i + 1, -1);
  let crc: string | undefined;
  if (data.length > 0 && CRC_LINE.test(data[data.length - 1] as string)) crc = (data.pop() as string).slice(1);
  for (const line of data) {
    if (!BASE64_LINE.test(line))
      throw new LiaisonError('envelope-malformed', { publicDetail: 'the armor body is not base64' });
  }
  const b64 = data.join('');
  if (b64.length === 0 || b64.length % 4 !== 0 || /=[^=]/.test(b64))
    throw new LiaisonError('envelope-malformed', { publicDetail: 'the armor body is not base64' });
  const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
  if (crc !== undefined) {
    const expected = Buffer.from(crc, 'base64');
    if ((((expected[0] as number) << 16) | ((expected[1] as number) << 8) | (expected[2] as number)) !== crc24(bytes)) {
      throw new LiaisonError('envelope-malformed', { publicDetail: 'the armor checksum does not match' });
    }
  }
  return bytes;
}

/** ASCII armor (RFC 4880 6.2) for a message: no headers, 64-character lines, CRC-24. Deterministic: the same bytes give the same text. */
export function armorMessage(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  const crc = crc24(bytes);
  const crcB64 = Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64');
  return `${BEGIN}\n\n${lines.join('\n')}\n=${crcB64}\n${END}\n`;
}
