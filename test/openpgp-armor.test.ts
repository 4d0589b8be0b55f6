import t from 'tap';
import { armor, enums, unarmor } from 'openpgp';
import { armorMessage, crc24, dearmorMessage } from '../adapters/openpgp/dearmor.js';
import { LiaisonError } from '../broker/core/errors.js';
import { throwsWith } from './helpers/assert-error.js';
import { DEFAULT_OPENPGP_LIMITS } from '../adapters/openpgp/limits.js';

t.test('CRC-24 (RFC 4880 6.1)', async (t) => {
  t.equal(crc24(new TextEncoder().encode('123456789')), 0x21cf02, 'the CRC-24/OpenPGP check value');
  t.equal(crc24(new Uint8Array(0)), 0xb704ce, 'nothing in: the initial value');
});

t.test(
  'our armor reads in openpgp.js and theirs in ours, checksums included; a changed checksum is refused',
  async (t) => {
    for (const size of [1, 47, 48, 49, 8000]) {
      const bytes = new Uint8Array(size).map((_, i) => (i * 131 + 7) & 0xff);
      const ours = armorMessage(bytes);
      const read = await unarmor(ours);
      t.same(Buffer.from(read.data as Uint8Array), Buffer.from(bytes), `${size} bytes: openpgp.js reads our armor`);
      t.same(
        Buffer.from(dearmorMessage(armor(enums.armor.message, bytes), DEFAULT_OPENPGP_LIMITS)),
        Buffer.from(bytes),
        `${size} bytes: we read openpgp.js's armor`,
      );
      t.same(
        Buffer.from(dearmorMessage(ours, DEFAULT_OPENPGP_LIMITS)),
        Buffer.from(bytes),
        `${size} bytes: and our own`,
      );
    }
    const text = armorMessage(new Uint8Array(100).fill(9));
    const bad = text.replace(/\n=(.{4})\n/, (_m, c: string) => `\n=${c[0] === 'A' ? 'B' : 'A'}${c.slice(1)}\n`);
    throwsWith(t, () => dearmorMessage(bad, DEFAULT_OPENPGP_LIMITS), LiaisonError, 'envelope-malformed', {
      what: 'a wrong checksum is refused',
    });
  },
);
