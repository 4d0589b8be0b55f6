/**
 * An agency's integration with Liaison in one file, using only the `jose`
 * library (any JOSE implementation works the same way):
 *
 *   1. fetch the broker's keys          GET  /v1/keys
 *   2. sign the notice, encrypt to the broker, post it    POST /v1/notices
 *   3. verify the broker's receipt
 *   4. read the inbox with a client assertion, decrypt each delivery and
 *      verify the origin's signature    GET  /v1/inbox, GET /v1/registry/agencies/{id}/keys
 *
 * Run it:  node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs docs/examples/send-notice.ts \
 *            http://127.0.0.1:8080 data/demo/agencies/iq-police.json docs/examples/notices/person-alert.json
 * test/docs-integration.test.ts runs these functions against a real gateway.
 */

import { randomUUID } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  compactDecrypt,
  CompactEncrypt,
  CompactSign,
  compactVerify,
  flattenedDecrypt,
  importJWK,
  SignJWT,
  type FlattenedJWE,
  type JWK,
} from 'jose';

/** An agency's private keys (as `liaison keys generate` writes them). */
export interface Credentials {
  agency: string;
  country: string;
  signing: JWK; // private; kid and alg (EdDSA or ES256) set
  encryption: JWK; // private; X25519 or P-256
}

export interface Receipt {
  receipt: string; // compact JWS by the broker
  notice_id: string;
  log_index: number;
  received_at: string;
  sha256: string;
  recipients: string[];
}

/** An RFC 9457 problem answer, with its stable code. */
export class LiaisonProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly body: Record<string, unknown>,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the server's problem fields, whatever they are
    super(`${status} ${code}: ${String(body.title)}${body.detail ? ` ${String(body.detail)}` : ''}`);
  }
}

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new LiaisonProblem(res.status, String(body.code), body);
  return body as T;
}

const signingAlg = (k: JWK) => k.alg ?? (k.crv === 'Ed25519' ? 'EdDSA' : 'ES256');

/** 1. The broker's public keys and id (cache them for a few minutes, not for ever: keys rotate). */
export async function brokerKeys(url: string): Promise<{ broker: string; keys: JWK[] }> {
  return answer(await fetch(`${url}/v1/keys`));
}

/** 2. Sign the notice with the agency's key (JWS), encrypt it to a broker key (JWE), post it. */
export async function sendNotice(url: string, creds: Credentials, notice: Record<string, unknown>): Promise<Receipt> {
  const { keys } = await brokerKeys(url);
  const brokerKey = keys.find((k) => k.use === 'enc' && k.crv === 'X25519');
  if (!brokerKey) throw new Error('the broker publishes no X25519 encryption key');
  const payload = new TextEncoder().encode(JSON.stringify(notice));
  const alg = signingAlg(creds.signing);
  const jws = await new CompactSign(payload)
    .setProtectedHeader({ alg, kid: creds.signing.kid, typ: 'liaison-notice+jws' })
    .sign(await importJWK(creds.signing, alg));
  const jwe = await new CompactEncrypt(new TextEncoder().encode(jws))
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: brokerKey.kid, cty: 'JWT' })
    .encrypt(await importJWK(brokerKey, 'ECDH-ES+A256KW'));
  // Retrying the same jwe after a 503 or a network error is safe: the broker answers with the original receipt.
  return answer(
    await fetch(`${url}/v1/notices`, { method: 'POST', headers: { 'content-type': 'application/jose' }, body: jwe }),
  );
}

/** 3. Check the receipt's signature against the broker's published signing keys; returns its claims. */
export async function verifyReceipt(url: string, receipt: string): Promise<Record<string, unknown>> {
  const { keys } = await brokerKeys(url);
  const { payload, protectedHeader } = await compactVerify(
    receipt,
    async (h) => {
      const k = keys.find((j) => j.kid === h.kid && j.use === 'sig');
      if (!k) throw new Error(`unknown broker key ${String(h.kid)}`);
      return importJWK(k, 'EdDSA');
    },
    { algorithms: ['EdDSA'] },
  );
  if (protectedHeader.typ !== 'liaison-receipt+jws') throw new Error('not a Liaison receipt');
  return JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
}

/** A client assertion for one read: a 2-minute JWT signed by the agency's key, aud = the broker id, unique jti. */
export async function clientAssertion(creds: Credentials, brokerId: string): Promise<string> {
  const alg = signingAlg(creds.signing);
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: creds.signing.kid, typ: 'JWT' })
    .setIssuer(creds.agency)
    .setSubject(creds.agency)
    .setAudience(brokerId)
    .setIssuedAt()
    .setExpirationTime('2m')
    .setJti(randomUUID())
    .sign(await importJWK(creds.signing, alg));
}

interface Delivery {
  cursor: number;
  notice_id: string;
  origin: { country: string; agency: string };
  received_at: string;
  jwe: string;
}

/** 4. One page of the inbox, each delivery decrypted and its origin signature verified. */
export async function readInbox(
  url: string,
  creds: Credentials,
  after = 0,
): Promise<{ next: number; notices: { cursor: number; notice: Record<string, unknown> }[] }> {
  const { broker } = await brokerKeys(url);
  const get = async <T>(path: string) =>
    answer<T>(
      await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${await clientAssertion(creds, broker)}` } }),
    );
  const page = await get<{ deliveries: Delivery[]; next: number }>(`/v1/inbox?after=${after}&limit=100`);
  const notices = [];
  for (const d of page.deliveries) {
    // The delivery is a JWE to our encryption key around the origin's JWS, exactly as the origin signed it: the
    // text of a flattened JSON JWE, or a compact JWE for deliveries stored before one content encryption per notice.
    const key = await importJWK({ ...creds.encryption, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
    const options = { keyManagementAlgorithms: ['ECDH-ES+A256KW'], contentEncryptionAlgorithms: ['A256GCM'] };
    const { plaintext } = d.jwe.startsWith('{')
      ? await flattenedDecrypt(JSON.parse(d.jwe) as FlattenedJWE, key, options)
      : await compactDecrypt(d.jwe, key, options);
    const jws = new TextDecoder().decode(plaintext);
    const origin = await get<{ keys: { kid: string; use: string; jwk: JWK }[] }>(
      `/v1/registry/agencies/${encodeURIComponent(d.origin.agency)}/keys`,
    );
    const { payload } = await compactVerify(jws, async (h) => {
      const k = origin.keys.find((x) => x.kid === h.kid && x.use === 'sig');
      if (!k) throw new Error(`${String(h.kid)} is not a signing key of ${d.origin.agency}`);
      return importJWK(k.jwk, signingAlg(k.jwk));
    });
    const notice = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    if (notice.id !== d.notice_id || (notice.origin as { agency?: unknown }).agency !== d.origin.agency)
      throw new Error('the signed notice does not match the delivery');
    notices.push({ cursor: d.cursor, notice });
  }
  return { next: page.next, notices };
}

/**
 * A sample notice made sendable now (as `liaison notice send --stamp` does): a
 * fresh id, created_at now, expires_at moved by as much (so the notice keeps its
 * validity period), and the sender as origin.
 */
export function stamp(notice: Record<string, unknown>, creds: Credentials, now = new Date()): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...notice,
    id: randomUUID(),
    created_at: now.toISOString(),
    origin: { country: creds.country, agency: creds.agency },
  };
  if (typeof notice.expires_at === 'string' && typeof notice.created_at === 'string') {
    out.expires_at = new Date(
      now.getTime() + Date.parse(notice.expires_at) - Date.parse(notice.created_at),
    ).toISOString();
  }
  return out;
}

// As a script: send FILE (stamped) as the agency of CREDENTIALS to URL.
// (realpath: run through a symbolic link, argv[1] is the link and import.meta.url the file.)
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  const [url = 'http://127.0.0.1:8080', credFile, noticeFile] = process.argv.slice(2);
  if (!credFile || !noticeFile) {
    process.stderr.write('usage: send-notice.ts URL CREDENTIALS.json NOTICE.json\n');
    process.exit(2);
  }
  const creds = JSON.parse(readFileSync(credFile, 'utf8')) as Credentials;
  const notice = stamp(JSON.parse(readFileSync(noticeFile, 'utf8')) as Record<string, unknown>, creds);
  try {
    const r = await sendNotice(url, creds, notice);
    const claims = await verifyReceipt(url, r.receipt);
    process.stdout.write(
      `accepted ${r.notice_id} at log index ${r.log_index}; receipt verified (sha256 ${String(claims.sha256)})\n`,
    );
  } catch (e) {
    process.stderr.write(`refused: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
