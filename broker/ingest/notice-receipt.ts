import canonicalize from 'canonicalize';
import { sign } from 'node:crypto';
import { compactVerify, importJWK, type JWK } from 'jose';
import type { BrokerSigningKey } from '../keys/broker-keys.js';
import { keyObjectOf } from '../keys/key-object.js';
import type { NoticeLogEntry } from '../log/entry.js';

export const RECEIPT_TYP = 'liaison-receipt+jws';

export interface ReceiptClaims {
  iss: string;
  notice_id: string;
  sha256: string;
  log_index: number;
  received_at: string;
  recipients: string[];
}

export function receiptClaims(brokerId: string, entry: NoticeLogEntry, logIndex: number): ReceiptClaims {
  return {
    iss: brokerId,
    notice_id: entry.notice_id,
    sha256: entry.sha256,
    log_index: logIndex,
    received_at: entry.received_at,
    recipients: entry.recipients,
  };
}

const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');

/**
 * Step 8: the broker-signed receipt, a compact JWS (RFC 7515 §7.1) over the
 * canonical (RFC 8785) claims. Ed25519 is deterministic, so a retry gets
 * byte-identical receipts. Signed with node:crypto's synchronous one-shot
 * Ed25519 (RFC 8037 §3.1), not jose's CompactSign: one WebCrypto call less per
 * notice (bench/crypto-calls.ts); the bytes are the same as jose's (the same
 * header member order, the same signature), and jose and python3-jwcrypto
 * verify them (tests).
 */
export async function signReceipt(key: BrokerSigningKey, claims: ReceiptClaims): Promise<string> {
  const payload = (canonicalize as unknown as (v: unknown) => string)(claims);
  const signingInput = `${b64u(JSON.stringify({ alg: key.alg, kid: key.kid, typ: RECEIPT_TYP }))}.${b64u(payload)}`;
  const signature = sign(null, Buffer.from(signingInput, 'ascii'), keyObjectOf(key.privateKey));
  return `${signingInput}.${b64u(signature)}`;
}

/** Verify a receipt against a JWKS (the broker's `GET /v1/keys`). */
export async function verifyReceipt(receipt: string, jwks: { keys: JWK[] }): Promise<ReceiptClaims> {
  const { payload, protectedHeader } = await compactVerify(
    receipt,
    async (h) => {
      const jwk = jwks.keys.find((k) => k.kid === h.kid && (k.use === undefined || k.use === 'sig'));
      if (!jwk) throw new Error(`no broker key ${h.kid ?? '(none)'}`);
      return importJWK(jwk, 'EdDSA');
    },
    { algorithms: ['EdDSA'] },
  );
  if (protectedHeader.typ !== RECEIPT_TYP) throw new Error('not a Liaison receipt');
  return JSON.parse(new TextDecoder().decode(payload)) as ReceiptClaims;
}
