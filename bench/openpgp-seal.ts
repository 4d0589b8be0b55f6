/**
 * CPU per notice of its OpenPGP deliveries: one sign-and-encrypt per recipient
 * (`seal`, as before issue 24) against one for all (`sealAll`), 8 kB notice.
 *
 *   npm run build && node dist/bench/openpgp-seal.js [--calls 300]
 */
import { parseArgs } from 'node:util';
import { generateKey, readKey, readPrivateKey } from 'openpgp';
import { createOpenPgpDeliverySealer } from '../adapters/openpgp/seal-delivery.js';
import { out } from './processes.js';
import { round } from './stats.js';

const { values } = parseArgs({ options: { calls: { type: 'string' } } });
const N = Number(values.calls ?? 300);
if (!(Number.isInteger(N) && N >= 10 && N <= 100_000)) throw new Error('--calls: an integer between 10 and 100000');

async function measure(name: string, fn: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < N / 10; i++) await fn(); // JIT warm-up
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await fn();
  const u = process.cpuUsage(c0);
  out(`${name.padEnd(40)} ${String(round((u.user + u.system) / N, 1)).padStart(8)} µs CPU per notice`);
}

const key = async () => generateKey({ userIDs: [{ name: 'bench' }], type: 'curve25519', format: 'armored' });
const broker = await readPrivateKey({ armoredKey: (await key()).privateKey });
const sealer = createOpenPgpDeliverySealer(broker);
const data = new Uint8Array(8000).fill(65);
out(`node ${process.version}, ${N} notices each, one at a time`);
for (const n of [3, 4, 5]) {
  const keys = await Promise.all(
    Array.from({ length: n }, async () => readKey({ armoredKey: (await key()).publicKey })),
  );
  const to = { noticeId: 'n', format: 'jose' };
  await measure(`  ${n} recipients, one message each`, () =>
    Promise.all(keys.map((k) => sealer.seal(data, { ...to, key: k }))),
  );
  await measure(`  ${n} recipients, signed and encrypted once`, () => sealer.sealAll(data, { ...to, keys }));
}
