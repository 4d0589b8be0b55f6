import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { brokerEncryptionKey, sealNotice } from '../broker/agency-client/seal.js';
import { repoRoot } from '../broker/core/paths.js';
import { credentialsPath, readCredentials } from '../broker/demo/demo-network.js';

/** The five sample notices; each is sent by the agency named in its origin (Ed25519 and ES256 signers mixed). */
export const NOTICE_TYPES = [
  'seizure-report',
  'person-alert',
  'modus-operandi',
  'request-for-assistance',
  'document-fraud-alert',
] as const;
/** Size classes: as in docs/examples, +10 references, +50 references and a long summary. */
export const SIZES = ['small', 'medium', 'large'] as const;

export interface BenchEnvelope {
  id: string;
  type: string;
  size: (typeof SIZES)[number];
  bytes: number;
  /** What is posted: a compact JWE (application/jose) or an armored OpenPGP message (application/pgp-encrypted). */
  body: string;
  mediaType: string;
}

const samples = new Map<string, Record<string, unknown>>();
function sample(type: string): Record<string, unknown> {
  let s = samples.get(type);
  if (!s) {
    s = JSON.parse(readFileSync(join(repoRoot, 'docs', 'examples', 'notices', `${type}.json`), 'utf8')) as Record<
      string,
      unknown
    >;
    samples.set(type, s);
  }
  return s;
}

/** A fresh notice (new id, created_at now) of a type and size class, valid against schemas/ and policy. */
export function makeNotice(type: string, size: (typeof SIZES)[number]): Record<string, unknown> {
  const now = Date.now();
  const n: Record<string, unknown> = { ...sample(type), id: randomUUID(), created_at: new Date(now).toISOString() };
  if (n.expires_at !== undefined) n.expires_at = new Date(now + 30 * 24 * 3600 * 1000).toISOString();
  if (size !== 'small') n.references = Array.from({ length: size === 'medium' ? 10 : 50 }, () => randomUUID());
  if (size === 'large') {
    const s = String(n.summary);
    n.summary = (s + ' ')
      .repeat(Math.max(1, Math.floor(1900 / (s.length + 1))))
      .trim()
      .slice(0, 1990);
  }
  return n;
}

/** Sign (agency key) and encrypt (broker key) `count` notices, cycling types and sizes; the client's cost, paid before timing. */
export async function sealEnvelopes(count: number, dataDir: string, jwks: { keys: JWK[] }): Promise<BenchEnvelope[]> {
  const brokerKey = brokerEncryptionKey(jwks);
  const creds = new Map<string, JWK>();
  const out: BenchEnvelope[] = [];
  for (let i = 0; i < count; i++) {
    const type = NOTICE_TYPES[i % NOTICE_TYPES.length]!;
    const size = SIZES[Math.floor(i / NOTICE_TYPES.length) % SIZES.length]!;
    const notice = makeNotice(type, size);
    const agency = (notice.origin as { agency: string }).agency;
    let signingKey = creds.get(agency);
    if (!signingKey) {
      signingKey = readCredentials(credentialsPath(dataDir, agency)).signing;
      creds.set(agency, signingKey);
    }
    const bytes = new TextEncoder().encode(JSON.stringify(notice));
    const { jwe } = await sealNotice(bytes, { signingKey, brokerKey });
    out.push({ id: notice.id as string, type, size, bytes: jwe.length, body: jwe, mediaType: 'application/jose' });
  }
  return out;
}
