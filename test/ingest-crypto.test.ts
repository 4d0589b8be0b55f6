/**
 * The ingest crypto on node:crypto (adapters/jose/decrypt-jwe.ts,
 * verify-jws.ts, broker/ingest/notice-receipt.ts): it opens what jose and
 * python3-jwcrypto make, for every JWE alg, enc and curve and every JWS alg
 * Liaison accepts; it refuses exactly what jose refuses on the same forged
 * envelopes; its receipts are jose's bytes and verify in jose and jwcrypto;
 * and a notice costs no WebCrypto call.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, diffieHellman, KeyObject, randomBytes, sign as nodeSign } from 'node:crypto';
import {
  CompactEncrypt,
  CompactSign,
  compactDecrypt,
  exportJWK,
  generateKeyPair,
  type CryptoKey,
  type JWK,
} from 'jose';
import { joseEnvelope } from '../adapters/jose/index.js';
import { JWE_ALGS, JWE_ENCS } from '../adapters/jose/parse-jwe.js';
import { JWS_ALGS } from '../adapters/jose/verify-jws.js';
import type { ResolvedSigner } from '../broker/core/envelope.js';
import { LiaisonError } from '../broker/core/errors.js';
import type { BrokerSigningKey } from '../broker/keys/broker-keys.js';
import { importKey, makeKeyPair, publicPart, signatureAlgsFor, type KeyKind } from '../broker/keys/jwk.js';
import { RECEIPT_TYP, signReceipt, verifyReceipt, type ReceiptClaims } from '../broker/ingest/notice-receipt.js';
import { rejectsWith } from './helpers/assert-error.js';
import { flipPart } from './helpers/forge.js';
import { JWCRYPTO_TOOL } from './helpers/jwcrypto.js';

const py = (cmd: string, input: unknown) =>
  spawnSync('/usr/bin/python3', [JWCRYPTO_TOOL, cmd], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    timeout: 30_000,
  });
const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');

const CURVES = { X25519: 'X25519', 'P-256': 'P-256-ECDH' } as const satisfies Record<string, KeyKind>;
type Curve = keyof typeof CURVES;

const brokerKeys = new Map<Curve, { kid: string; publicJwk: JWK; key: CryptoKey }>();
for (const crv of Object.keys(CURVES) as Curve[]) {
  const pair = await makeKeyPair(CURVES[crv], `broker-${crv}`);
  brokerKeys.set(crv, { kid: pair.kid, publicJwk: pair.publicJwk, key: await importKey(pair.privateJwk, 'ECDH-ES') });
}
const signers = new Map<string, { privateJwk: JWK; signer: ResolvedSigner }>();
for (const kind of ['Ed25519', 'ES256'] as const) {
  const pair = await makeKeyPair(kind, `agency-${kind}`);
  const algorithms = signatureAlgsFor(pair.publicJwk);
  const key = await importKey(pair.publicJwk, algorithms[0] as string);
  signers.set(kind, {
    privateJwk: pair.privateJwk,
    signer: { kid: pair.kid, agencyId: 'vn-customs', key, algorithms },
  });
}
const signerFor = (alg: string) => signers.get(alg === 'ES256' ? 'ES256' : 'Ed25519')!;

const ctx = {
  decryptionKey: (kid: string) => [...brokerKeys.values()].find((k) => k.kid === kid)?.key,
  resolveSigner: async (kid: string) => {
    const s = [...signers.values()].find((v) => v.signer.kid === kid);
    if (!s) throw new LiaisonError('key-unknown', { publicDetail: 'unknown signer' });
    return s.signer;
  },
};
const notice = new TextEncoder().encode('{"summary":"ضبط شحنة — Bắt giữ lô hàng — ยึดสินค้า"}');

async function joseJws(alg: string): Promise<string> {
  const { privateJwk, signer } = signerFor(alg);
  const key = await importKey(privateJwk, alg === 'Ed25519' ? 'Ed25519' : signer.algorithms[0]!);
  return new CompactSign(notice).setProtectedHeader({ alg, kid: signer.kid, typ: 'liaison-notice+jws' }).sign(key);
}

async function joseJwe(
  inner: string,
  alg: string,
  enc: string,
  crv: Curve,
  params: { apu?: Uint8Array; apv?: Uint8Array } = {},
) {
  const b = brokerKeys.get(crv)!;
  const pub = await importKey(b.publicJwk, 'ECDH-ES');
  const e = new CompactEncrypt(new TextEncoder().encode(inner)).setProtectedHeader({
    alg,
    enc,
    kid: b.kid,
    cty: 'JWT',
  });
  if (params.apu || params.apv) e.setKeyManagementParameters(params);
  return e.encrypt(pub);
}

/** Open as the gateway does, and also with jose (the reference); both outcomes are returned. */
async function openBoth(envelope: string, crv: Curve) {
  const ours = await joseEnvelope.open(envelope, ctx).then(
    (o) => ({ ok: true as const, payload: Buffer.from(o.payload), signed: Buffer.from(o.signed) }),
    (e: unknown) => ({ ok: false as const, error: e }),
  );
  const theirs = await compactDecrypt(envelope, brokerKeys.get(crv)!.key, {
    keyManagementAlgorithms: [...JWE_ALGS],
    contentEncryptionAlgorithms: [...JWE_ENCS],
  }).then(
    (r) => ({ ok: true as const, plaintext: Buffer.from(r.plaintext) }),
    () => ({ ok: false as const }),
  );
  return { ours, theirs };
}

t.test('envelopes made by jose open, for every JWE alg x enc x curve and every JWS alg', async (t) => {
  for (const alg of JWE_ALGS)
    for (const enc of JWE_ENCS)
      for (const crv of Object.keys(CURVES) as Curve[])
        for (const jwsAlg of JWS_ALGS) {
          const inner = await joseJws(jwsAlg);
          const opened = await joseEnvelope.open(await joseJwe(inner, alg, enc, crv), ctx);
          t.same(Buffer.from(opened.payload), Buffer.from(notice), `${alg} ${enc} ${crv} ${jwsAlg}: the notice`);
          t.equal(Buffer.from(opened.signed).toString(), inner, `${alg} ${enc} ${crv} ${jwsAlg}: the signed bytes`);
        }
});

t.test('apu and apv (RFC 7518 4.6.2 PartyUInfo, PartyVInfo) enter the key derivation as jose puts them', async (t) => {
  for (const alg of JWE_ALGS)
    for (const crv of Object.keys(CURVES) as Curve[]) {
      const inner = await joseJws('EdDSA');
      const env = await joseJwe(inner, alg, 'A256GCM', crv, {
        apu: new TextEncoder().encode('vn-customs'),
        apv: new TextEncoder().encode('liaison-hub'),
      });
      const opened = await joseEnvelope.open(env, ctx);
      t.same(Buffer.from(opened.payload), Buffer.from(notice), `${alg} ${crv}: opens with apu and apv`);
    }
});

t.test('envelopes made by python3-jwcrypto open, for every JWE alg x curve and both key types', async (t) => {
  for (const alg of JWE_ALGS)
    for (const crv of Object.keys(CURVES) as Curve[])
      for (const kind of ['Ed25519', 'ES256'] as const) {
        const s = signers.get(kind)!;
        const b = brokerKeys.get(crv)!;
        const out = py('seal', {
          notice: Buffer.from(notice).toString('utf8'),
          signing_jwk: { ...s.privateJwk, kid: s.signer.kid },
          broker_jwk: publicPart(b.publicJwk),
          alg,
        });
        t.equal(out.status, 0, out.stderr);
        const opened = await joseEnvelope.open(out.stdout.trim(), ctx);
        t.same(Buffer.from(opened.payload), Buffer.from(notice), `${alg} ${crv} ${kind}: jwcrypto's envelope opens`);
      }
});

/** A JWE (A256GCM) built by hand, for the headers and keys no library makes: the checks must refuse it, not the AAD. */
function forgeJwe(
  crv: Curve,
  alg: (typeof JWE_ALGS)[number],
  plaintext: string,
  opts: { epk?: (epk: JWK) => JWK; z?: Buffer; extra?: Record<string, unknown>; iv?: Buffer; tagLength?: number },
  eph: { privateKey: KeyObject; publicJwk: JWK },
): string {
  const b = brokerKeys.get(crv)!;
  const z = opts.z ?? diffieHellman({ privateKey: eph.privateKey, publicKey: publicOf(crv) });
  const epk = opts.epk ? opts.epk(eph.publicJwk) : eph.publicJwk;
  const header = b64u(JSON.stringify({ alg, enc: 'A256GCM', kid: b.kid, epk, ...opts.extra }));
  const lp = (x: Buffer) => Buffer.concat([u32(x.length), x]);
  const party = (name: 'apu' | 'apv') =>
    typeof opts.extra?.[name] === 'string' ? Buffer.from(opts.extra[name], 'base64url') : Buffer.alloc(0);
  const derived = createHash('sha256')
    .update(
      Buffer.concat([
        u32(1),
        z,
        lp(Buffer.from(alg === 'ECDH-ES' ? 'A256GCM' : alg)),
        lp(party('apu')),
        lp(party('apv')),
        u32(256),
      ]),
    )
    .digest();
  let cek = derived;
  let encryptedKey = '';
  if (alg === 'ECDH-ES+A256KW') {
    cek = randomBytes(32);
    const w = createCipheriv('id-aes256-wrap', derived, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
    encryptedKey = b64u(Buffer.concat([w.update(cek), w.final()]));
  }
  const iv = opts.iv ?? randomBytes(12);
  const gcm = createCipheriv('aes-256-gcm', cek, iv);
  gcm.setAAD(Buffer.from(header, 'ascii'));
  const ct = Buffer.concat([gcm.update(plaintext), gcm.final()]);
  const tag = gcm.getAuthTag().subarray(0, opts.tagLength ?? 16);
  return `${header}.${encryptedKey}.${b64u(iv)}.${b64u(ct)}.${b64u(tag)}`;
}
const u32 = (n: number) => {
  const x = Buffer.alloc(4);
  x.writeUInt32BE(n);
  return x;
};
const publicKeys = new Map<Curve, KeyObject>();
const publicOf = (crv: Curve) => publicKeys.get(crv)!;
for (const crv of Object.keys(CURVES) as Curve[])
  publicKeys.set(crv, KeyObject.from(await importKey(brokerKeys.get(crv)!.publicJwk, 'ECDH-ES')));

/** An ephemeral key made by WebCrypto (jose) and exported as a JWK there: never a JWK export of a fresh node:crypto X25519 key. */
async function ephemeral(crv: Curve) {
  const { privateKey, publicKey } = await generateKeyPair('ECDH-ES', { crv, extractable: true });
  const { x, y, kty } = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  return {
    privateKey: KeyObject.from(privateKey),
    publicJwk: { kty, crv, x, ...(y ? { y } : {}) } as JWK,
    d: privateJwk.d as string,
  };
}

t.test('forged envelopes: refused exactly when jose refuses them, always as decrypt-failed', async (t) => {
  const inner = await joseJws('EdDSA');
  for (const crv of Object.keys(CURVES) as Curve[])
    for (const alg of JWE_ALGS) {
      const eph = await ephemeral(crv);
      const other = crv === 'X25519' ? await ephemeral('P-256') : await ephemeral('X25519');
      const cases: [string, boolean, Parameters<typeof forgeJwe>[3]][] = [
        ['well formed', true, {}],
        ['apu and apv', true, { extra: { apu: b64u('a'), apv: b64u('b') } }],
        ['apu equal to apv', false, { extra: { apu: b64u('same'), apv: b64u('same') } }],
        ['apu not a string', false, { extra: { apu: 7 } }],
        ['apu not base64url', false, { extra: { apu: 'a+b/' } }],
        ['epk carrying its private d', false, { epk: (e) => ({ ...e, d: eph.d }) }],
        ['epk with kid, alg and use', true, { epk: (e) => ({ ...e, kid: 'e', alg: alg, use: 'enc' }) }],
        ['epk with an empty key_ops', true, { epk: (e) => ({ ...e, key_ops: [] }) }],
        ['epk with key_ops deriveBits', false, { epk: (e) => ({ ...e, key_ops: ['deriveBits'] }) }],
        ['epk with key_ops not an array', false, { epk: (e) => ({ ...e, key_ops: 'deriveBits' }) as unknown as JWK }],
        ['epk missing', false, { epk: () => undefined as unknown as JWK }],
        ['epk an array', false, { epk: () => [] as unknown as JWK }],
        ['epk on the other curve', false, { epk: () => other.publicJwk }],
        ['a 16-byte IV', false, { iv: randomBytes(16) }],
        ['a 12-byte tag', false, { tagLength: 12 }],
      ];
      if (crv === 'X25519')
        // A low-order point: the shared secret is all zeros, known to anyone (RFC 7748 6.1).
        cases.push([
          'a low-order X25519 epk (all-zero shared secret)',
          false,
          { epk: () => ({ kty: 'OKP', crv: 'X25519', x: b64u(Buffer.alloc(32)) }), z: Buffer.alloc(32) },
        ]);
      for (const [what, accepted, opts] of cases) {
        const env = forgeJwe(crv, alg, inner, opts, eph);
        const { ours, theirs } = await openBoth(env, crv);
        t.equal(theirs.ok, accepted, `${crv} ${alg} ${what}: jose ${accepted ? 'opens' : 'refuses'} it`);
        t.equal(ours.ok, accepted, `${crv} ${alg} ${what}: the gateway ${accepted ? 'opens' : 'refuses'} it`);
        if (!ours.ok)
          t.equal((ours.error as LiaisonError).code, 'decrypt-failed', `${crv} ${alg} ${what}: decrypt-failed`);
      }
    }
});

t.test('changed parts and another key of the same curve: decrypt-failed', async (t) => {
  for (const alg of JWE_ALGS)
    for (const crv of Object.keys(CURVES) as Curve[]) {
      const env = await joseJwe(await joseJws('EdDSA'), alg, 'A256GCM', crv);
      for (const i of alg === 'ECDH-ES' ? [2, 3, 4] : [1, 2, 3, 4])
        await rejectsWith(t, joseEnvelope.open(flipPart(env, i), ctx), LiaisonError, 'decrypt-failed', {
          what: `${alg} ${crv}: part ${i} changed`,
        });
      const stranger = await makeKeyPair(CURVES[crv]);
      const strangerKey = await importKey(stranger.privateJwk, 'ECDH-ES');
      await rejectsWith(
        t,
        joseEnvelope.open(env, { ...ctx, decryptionKey: () => strangerKey }),
        LiaisonError,
        'decrypt-failed',
        { what: `${alg} ${crv}: another broker key` },
      );
    }
});

t.test("padded base64url parts (RFC 7515 2: no '='): refused, stricter than jose 6 on Node 20", async (t) => {
  for (const alg of JWE_ALGS) {
    const env = await joseJwe(await joseJws('EdDSA'), alg, 'A256GCM', 'X25519');
    const parts = env.split('.');
    parts[4] = `${parts[4]}==`;
    const { ours, theirs } = await openBoth(parts.join('.'), 'X25519');
    t.ok(theirs.ok, `${alg}: jose's decoder (atob) takes the padded tag`);
    t.equal(ours.ok ? 'opened' : (ours.error as LiaisonError).code, 'decrypt-failed', `${alg}: the gateway refuses it`);
  }
  const [h, p, sig] = (await joseJws('EdDSA')).split('.') as [string, string, string];
  const padded = await joseJwe(`${h}.${p}.${sig}==`, 'ECDH-ES+A256KW', 'A256GCM', 'X25519');
  await rejectsWith(t, joseEnvelope.open(padded, ctx), LiaisonError, 'signature-invalid', {
    what: 'a padded JWS signature',
  });
});

t.test('JWS checks: ES256 is R || S, never DER; the key type must match alg; a changed part fails', async (t) => {
  const wrap = (jws: string) => joseJwe(jws, 'ECDH-ES+A256KW', 'A256GCM', 'X25519');
  const es = await joseJws('ES256');
  const [h, p, s] = es.split('.') as [string, string, string];
  const raw = Buffer.from(s, 'base64url');
  const der = derOf(raw);
  await rejectsWith(
    t,
    joseEnvelope.open(await wrap(`${h}.${p}.${b64u(der)}`), ctx),
    LiaisonError,
    'signature-invalid',
    {
      what: 'a DER ECDSA signature',
    },
  );
  await rejectsWith(t, joseEnvelope.open(await wrap(flipPart(es, 2)), ctx), LiaisonError, 'signature-invalid', {
    what: 'a changed ES256 signature',
  });
  await rejectsWith(t, joseEnvelope.open(await wrap(flipPart(es, 1)), ctx), LiaisonError, 'signature-invalid', {
    what: 'a changed payload',
  });
  const ed = await joseJws('EdDSA');
  await rejectsWith(t, joseEnvelope.open(await wrap(flipPart(ed, 2)), ctx), LiaisonError, 'signature-invalid', {
    what: 'a changed Ed25519 signature',
  });
  const [eh, ep, esig] = ed.split('.') as [string, string, string];
  await rejectsWith(
    t,
    joseEnvelope.open(await wrap(`${eh}.${ep}.${esig.slice(0, -4)}`), ctx),
    LiaisonError,
    'signature-invalid',
    { what: 'a short Ed25519 signature' },
  );
  await rejectsWith(t, joseEnvelope.open(await wrap(`${eh}.${ep}!.${esig}`), ctx), LiaisonError, 'signature-invalid', {
    what: 'a payload that is not base64url',
  });
  const edPrivate = KeyObject.from(await importKey(signers.get('Ed25519')!.privateJwk, 'EdDSA'));
  const signedJunk = nodeSign(null, Buffer.from(`${eh}.${ep}!`), edPrivate);
  await rejectsWith(
    t,
    joseEnvelope.open(await wrap(`${eh}.${ep}!.${b64u(signedJunk)}`), ctx),
    LiaisonError,
    'signature-invalid',
    { what: 'a payload that is not base64url, validly signed' },
  );
  // An Ed25519 signature over a header naming ES256, with the kid of the Ed25519 key: the registered key type decides.
  const edKey = signers.get('Ed25519')!;
  const forgedHeader = b64u(JSON.stringify({ alg: 'ES256', kid: edKey.signer.kid }));
  const edSig = nodeSign(
    null,
    Buffer.from(`${forgedHeader}.${ep}`),
    KeyObject.from(await importKey(edKey.privateJwk, 'EdDSA')),
  );
  await rejectsWith(
    t,
    joseEnvelope.open(await wrap(`${forgedHeader}.${ep}.${b64u(edSig)}`), ctx),
    LiaisonError,
    'signature-invalid',
    { what: 'alg ES256 on an Ed25519 key' },
  );
  // The same, past the registry's alg list: the primitive still checks the key type.
  const lax = { ...ctx, resolveSigner: async () => ({ ...edKey.signer, algorithms: ['ES256'] }) };
  await rejectsWith(
    t,
    joseEnvelope.open(await wrap(`${forgedHeader}.${ep}.${b64u(edSig)}`), lax),
    LiaisonError,
    'signature-invalid',
    { what: 'alg ES256 verified against an Ed25519 key' },
  );
});

/** An ECDSA (r, s) as ASN.1 DER (RFC 3279 2.2.3), the form JOSE does not use. */
function derOf(raw: Buffer): Buffer {
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if ((v[0] as number) & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(raw.subarray(0, 32)), int(raw.subarray(32))]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

t.test("receipts: jose's bytes exactly, and they verify in jose and python3-jwcrypto", async (t) => {
  const pair = await makeKeyPair('Ed25519', 'broker-sig');
  const key: BrokerSigningKey = {
    kid: pair.kid,
    alg: 'EdDSA',
    privateKey: await importKey(pair.privateJwk, 'EdDSA'),
    publicJwk: pair.publicJwk,
  };
  const claims: ReceiptClaims = {
    iss: 'liaison-hub',
    notice_id: '5b0c8f9e-0000-4000-8000-000000000001',
    sha256: 'ab'.repeat(32),
    log_index: 7,
    received_at: '2026-12-07T22:00:00.000Z',
    recipients: ['th-customs', 'vn-c04'],
  };
  const receipt = await signReceipt(key, claims);
  const signedPayload = Buffer.from(receipt.split('.')[1]!, 'base64url');
  const viaJose = await new CompactSign(signedPayload)
    .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: RECEIPT_TYP })
    .sign(key.privateKey);
  t.equal(receipt, viaJose, "byte for byte what jose's CompactSign makes");
  const jwks = { keys: [{ ...publicPart(pair.publicJwk), use: 'sig' }] };
  t.same(await verifyReceipt(receipt, jwks), claims, 'jose verifies it');
  const out = py('verify-receipt', { jwks, receipt });
  t.equal(out.status, 0, out.stderr);
  t.same(JSON.parse(out.stdout), claims, 'python3-jwcrypto verifies it');
  t.equal(py('verify-receipt', { jwks, receipt: flipPart(receipt, 2) }).status, 1, 'a changed receipt does not');
});

t.test('a notice costs no WebCrypto call: open (decrypt, verify) and the receipt', async (t) => {
  const subtle = globalThis.crypto.subtle as unknown as Record<string, (...a: unknown[]) => unknown>;
  const pair = await makeKeyPair('Ed25519', 'broker-sig');
  const key: BrokerSigningKey = {
    kid: pair.kid,
    alg: 'EdDSA',
    privateKey: await importKey(pair.privateJwk, 'EdDSA'),
    publicJwk: pair.publicJwk,
  };
  const envelopes = [];
  for (const alg of JWE_ALGS)
    for (const crv of Object.keys(CURVES) as Curve[])
      for (const jwsAlg of ['EdDSA', 'ES256'])
        envelopes.push(await joseJwe(await joseJws(jwsAlg), alg, 'A256GCM', crv));
  // Once first: keys are converted on first use (KeyObject.from), not per notice.
  for (const env of envelopes) await joseEnvelope.open(env, ctx);
  const calls: string[] = [];
  const methods = [
    'decrypt',
    'encrypt',
    'sign',
    'verify',
    'digest',
    'deriveBits',
    'deriveKey',
    'importKey',
    'exportKey',
    'unwrapKey',
    'wrapKey',
    'generateKey',
  ];
  const saved = methods.map((m) => [m, Object.getOwnPropertyDescriptor(subtle, m)] as const);
  for (const m of methods) {
    const original = subtle[m]!.bind(subtle);
    subtle[m] = (...a: unknown[]) => {
      calls.push(m);
      return original(...a);
    };
  }
  try {
    for (const env of envelopes) await joseEnvelope.open(env, ctx);
    await signReceipt(key, {
      iss: 'liaison-hub',
      notice_id: 'n',
      sha256: '00',
      log_index: 0,
      received_at: 'now',
      recipients: [],
    });
  } finally {
    for (const [m, d] of saved) {
      if (d) Object.defineProperty(subtle, m, d);
      else delete subtle[m];
    }
  }
  t.same(calls, [], 'no call to crypto.subtle');
});
