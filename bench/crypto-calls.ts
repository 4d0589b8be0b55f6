/**
 * CPU per call of the primitives behind one delivery JWE, through WebCrypto
 * (what jose 6 uses) and through node:crypto's synchronous calls (what
 * broker/adapters/jose/delivery-jwe.ts uses), and the whole delivery both ways.
 *
 *   npm run build && node dist/bench/crypto-calls.js [--calls 3000]
 *
 * One call at a time, in this process; CPU from process.cpuUsage (all threads).
 */
import * as c from 'node:crypto';
import { parseArgs } from 'node:util';
import { CompactEncrypt, exportJWK, generateKeyPair } from 'jose';
import { encryptDelivery } from '../adapters/jose/encrypt.js';
import type { RegistryJwk } from '../broker/registry/model.js';
import { out } from './processes.js';
import { round } from './stats.js';

const { values } = parseArgs({ options: { calls: { type: 'string' } } });
const N = Number(values.calls ?? 3000);
if (!(Number.isInteger(N) && N >= 10 && N <= 1_000_000)) throw new Error('--calls: an integer between 10 and 1000000');

async function measure(name: string, fn: () => unknown): Promise<void> {
  await fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await fn();
  const u = process.cpuUsage(c0);
  out(`${name.padEnd(48)} ${String(round((u.user + u.system) / N, 1)).padStart(8)} µs CPU per call`);
}

const { subtle } = c.webcrypto;
const data = new Uint8Array(8000).fill(65);
out(`node ${process.version}, ${N} calls each, one at a time`);

out('WebCrypto (jose 6):');
const wk = (await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as c.webcrypto.CryptoKeyPair;
const aes = await subtle.importKey('raw', new Uint8Array(32), 'AES-GCM', false, ['encrypt']);
await measure('  generateKey X25519', () => subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']));
await measure('  deriveBits X25519', () =>
  subtle.deriveBits({ name: 'X25519', public: wk.publicKey }, wk.privateKey, 256),
);
await measure('  digest SHA-256, 36 bytes', () => subtle.digest('SHA-256', new Uint8Array(36)));
await measure('  importKey raw AES', () => subtle.importKey('raw', new Uint8Array(32), 'AES-GCM', false, ['encrypt']));
await measure('  encrypt AES-GCM, 8 kB', () => subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, aes, data));

out('node:crypto, synchronous:');
const peer = c.generateKeyPairSync('x25519').publicKey;
const k = c.generateKeyPairSync('x25519').privateKey;
await measure('  generateKeyPairSync x25519', () => c.generateKeyPairSync('x25519'));
await measure('  diffieHellman x25519', () => c.diffieHellman({ privateKey: k, publicKey: peer }));
await measure('  export spki DER (x25519 public key)', () => peer.export({ format: 'der', type: 'spki' }));
await measure('  createHash SHA-256, 36 bytes', () => c.createHash('sha256').update(new Uint8Array(36)).digest());
await measure('  aes-256-gcm, 8 kB', () => {
  const g = c.createCipheriv('aes-256-gcm', c.randomBytes(32), c.randomBytes(12));
  g.update(data);
  g.final();
  return g.getAuthTag();
});

out('one delivery JWE (ECDH-ES+A256KW, A256GCM, X25519, 8 kB):');
const { publicKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'X25519', extractable: true });
const jwk = (await exportJWK(publicKey)) as RegistryJwk;
await measure('  jose CompactEncrypt (WebCrypto)', () =>
  new CompactEncrypt(data)
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'r', typ: 'liaison-delivery+jwe', cty: 'JWT' })
    .encrypt(publicKey),
);
await measure('  encryptDelivery (node:crypto, delivery-jwe.ts)', () => encryptDelivery(data, { kid: 'r', jwk }, 'n'));
