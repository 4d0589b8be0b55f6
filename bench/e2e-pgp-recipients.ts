/**
 * CPU of ingest's recipient check for an openpgp-e2e body: each session key's
 * key id resolved to the registered agency whose current encryption key it
 * is (adapters/e2e-openpgp/recipient-keys.ts), for 5 and 200 recipients, each
 * an agency with one certificate (GnuPG's default: Ed25519 and a cv25519 subkey).
 *
 *   npm run build && node dist/bench/e2e-pgp-recipients.js [--calls 200]
 */
import { parseArgs } from 'node:util';
import { encryptionKeyOwners } from '../adapters/e2e-openpgp/recipient-keys.js';
import { makeOpenPgpAgencyKey } from '../broker/keys/openpgp-agency.js';
import type { Agency } from '../broker/registry/model.js';
import { readKey } from 'openpgp';
import { out } from './processes.js';
import { round } from './stats.js';

const { values } = parseArgs({ options: { calls: { type: 'string' } } });
const N = Number(values.calls ?? 200);
if (!(Number.isInteger(N) && N >= 10 && N <= 100_000)) throw new Error('--calls: an integer between 10 and 100000');

async function network(n: number): Promise<{ agencies: Agency[]; keyIds: string[] }> {
  const agencies: Agency[] = [];
  const keyIds: string[] = [];
  for (let i = 0; i < n; i++) {
    const { record } = await makeOpenPgpAgencyKey(`agency-${i}`, `a${i}@bench.invalid`);
    agencies.push({
      id: `agency-${i}`,
      country: 'VN',
      name: `Agency ${i}`,
      roles: [],
      keys: [],
      openpgp_keys: [record],
    });
    const sub = (await readKey({ armoredKey: record.armored })).subkeys[0]!;
    keyIds.push(sub.getKeyID().toHex().toUpperCase());
  }
  return { agencies, keyIds };
}

out(`node ${process.version}, ${N} notices each, one at a time`);
for (const n of [5, 200]) {
  const { agencies, keyIds } = await network(n);
  // Certificates made this very second are never cached (encryption-key-ids.ts); registered ones are older.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const check = async () => {
    const owners = await encryptionKeyOwners(agencies, keyIds, new Date());
    if (owners.some((o) => !o)) throw new Error('a key id without its owner');
  };
  for (let i = 0; i < Math.max(1, N / 10); i++) await check(); // JIT warm-up
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await check();
  const u = process.cpuUsage(c0);
  out(
    `  ${String(n).padStart(3)} recipients ${String(round((u.user + u.system) / N, 1)).padStart(10)} µs CPU per notice`,
  );
}
