/**
 * CPU per call of the primitives behind one delivery JWE, through WebCrypto
 * (what jose 6 uses) and through node:crypto's synchronous calls (what
 * adapters/jose/delivery-jwe.ts uses), the whole delivery both ways, and one
 * notice's deliveries to 3-5 recipients (the router's sealing job); then every
 * crypto step of a notice's ingest both ways (JWE open per alg and curve, JWS
 * verify per alg, the receipt) and the steps already on node:crypto (the log
 * entry signature, sealing at rest).
 *
 *   npm run build && node dist/bench/crypto-calls.js [--calls 3000]
 *
 * One call at a time, in this process; CPU from process.cpuUsage (all threads).
 */
import * as c from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  CompactEncrypt,
  CompactSign,
  compactDecrypt,
  compactVerify,
  exportJWK,
  generateKeyPair,
  type CryptoKey,
} from 'jose';
import { decryptJwe } from '../adapters/jose/decrypt-jwe.js';
import { encryptDeliveries, encryptDelivery, recipientKeyByMaterial } from '../adapters/jose/encrypt.js';
import { JWE_ALGS, parseCompactJwe } from '../adapters/jose/parse-jwe.js';
import { verifyCompactJws } from '../adapters/jose/verify-jws.js';
import type { ResolvedSigner } from '../broker/core/envelope.js';
import { signReceipt, type ReceiptClaims } from '../broker/ingest/notice-receipt.js';
import type { BrokerSigningKey } from '../broker/keys/broker-keys.js';
import { importKey, makeKeyPair, signatureAlgsFor } from '../broker/keys/jwk.js';
import { signEntry } from '../broker/log/entry-signature.js';
import type { RegistryJwk } from '../broker/registry/model.js';
import { newDataKey, sealNotice, wrapDataKey } from '../broker/vault/seal.js';
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

out("one notice's deliveries (encryptDeliveries, 8 kB), CPU per notice:");
const recipient = async (crv: 'X25519' | 'P-256', i: number) => ({
  kid: `r${i}`,
  jwk: (await exportJWK(
    (await generateKeyPair('ECDH-ES+A256KW', { crv, extractable: true })).publicKey,
  )) as RegistryJwk,
});
const curves = (n: number, p256: number): ('X25519' | 'P-256')[] =>
  Array.from({ length: n }, (_, i) => (i < n - p256 ? 'X25519' : 'P-256'));
for (const [n, p256] of [
  [3, 0],
  [4, 0],
  [5, 0],
  [4, 2],
] as const) {
  const to = await Promise.all(curves(n, p256).map(recipient));
  // The key import cache the sealing worker uses (keyed by key material), as in the router.
  await measure(`  ${n} recipients${p256 ? ` (${p256} of them P-256)` : ', X25519'}`, () =>
    encryptDeliveries(data, to, 'n', 'jose', recipientKeyByMaterial),
  );
}

// Ingest (POST /v1/notices, a hub-readable JOSE notice): every crypto step, through jose (WebCrypto) and as the
// gateway does it now (node:crypto). No client assertion: the envelope's signature is the proof of origin.
out('ingest, one notice (8 kB), per step:');
const inner = new TextDecoder().decode(data);
const signerKinds = { EdDSA: 'Ed25519', ES256: 'ES256' } as const;
const ingestSigners = new Map<string, { privateKey: CryptoKey; signer: ResolvedSigner }>();
for (const [alg, kind] of Object.entries(signerKinds)) {
  const pair = await makeKeyPair(kind, `bench-${kind}`);
  ingestSigners.set(alg, {
    privateKey: await importKey(pair.privateJwk, alg),
    signer: {
      kid: pair.kid,
      agencyId: 'bench',
      key: await importKey(pair.publicJwk, alg),
      algorithms: signatureAlgsFor(pair.publicJwk),
    },
  });
}
for (const [alg, s] of ingestSigners) {
  const jws = await new CompactSign(new TextEncoder().encode(inner))
    .setProtectedHeader({ alg, kid: s.signer.kid })
    .sign(s.privateKey);
  const bytes = new TextEncoder().encode(jws);
  await measure(`  JWS verify ${alg}: jose compactVerify`, () =>
    compactVerify(jws, s.signer.key, { algorithms: [...s.signer.algorithms] }),
  );
  await measure(`  JWS verify ${alg}: verifyCompactJws (node:crypto)`, () =>
    verifyCompactJws(bytes, () => Promise.resolve(s.signer)),
  );
}
for (const [crv, kind] of [
  ['X25519', 'X25519'],
  ['P-256', 'P-256-ECDH'],
] as const) {
  const pair = await makeKeyPair(kind, `bench-${crv}`);
  const privateKey = await importKey(pair.privateJwk, 'ECDH-ES');
  const publicKey = await importKey(pair.publicJwk, 'ECDH-ES');
  for (const alg of JWE_ALGS) {
    const jwe = await new CompactEncrypt(data)
      .setProtectedHeader({ alg, enc: 'A256GCM', kid: pair.kid })
      .encrypt(publicKey);
    await measure(`  JWE ${alg} ${crv}: jose compactDecrypt`, () =>
      compactDecrypt(jwe, privateKey, {
        keyManagementAlgorithms: [...JWE_ALGS],
        contentEncryptionAlgorithms: ['A256GCM'],
      }),
    );
    const parsed = parseCompactJwe(jwe);
    await measure(`  JWE ${alg} ${crv}: decryptJwe (node:crypto)`, () => decryptJwe(parsed, () => privateKey));
  }
}
const brokerSig = await makeKeyPair('Ed25519', 'bench-broker');
const brokerKey: BrokerSigningKey = {
  kid: brokerSig.kid,
  alg: 'EdDSA',
  privateKey: await importKey(brokerSig.privateJwk, 'EdDSA'),
  publicJwk: brokerSig.publicJwk,
};
const claims: ReceiptClaims = {
  iss: 'liaison-hub',
  notice_id: '5b0c8f9e-0000-4000-8000-000000000001',
  sha256: 'ab'.repeat(32),
  log_index: 1234,
  received_at: new Date(0).toISOString(),
  recipients: ['cn-customs', 'la-customs', 'th-customs', 'vn-c04'],
};
await measure('  receipt: jose CompactSign', () =>
  new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'EdDSA', kid: brokerKey.kid, typ: 'liaison-receipt+jws' })
    .sign(brokerKey.privateKey),
);
await measure('  receipt: signReceipt (node:crypto)', () => signReceipt(brokerKey, claims));
await measure('  log entry signature: signEntry (node:crypto)', () => signEntry(brokerKey, data.subarray(0, 600)));
const storage = { kid: 'bench-storage', key: c.randomBytes(32) };
await measure('  seal at rest: data key, wrap, sealNotice (node:crypto)', () => {
  const dataKey = newDataKey();
  wrapDataKey(dataKey, storage);
  return sealNotice('5b0c8f9e-0000-4000-8000-000000000001', 'jose', data, dataKey);
});
