import { compactVerify, importJWK, type JWK } from 'jose';
import { signatureAlgsFor } from '../keys/jwk.js';
import { keyStateAt, type AgencyKey } from '../registry/model.js';
import { decryptDelivery } from '../routing/encrypt.js';

/** What an agency's own software does with a delivery: decrypt it, then verify the origin's signature itself. */
export interface OpenedDelivery {
  notice: Record<string, unknown>;
  /** The origin's compact JWS exactly as the broker received it. */
  jws: string;
  signerKid: string;
}

export class DeliveryVerificationError extends Error {
  constructor(
    readonly code: 'decrypt-failed' | 'signature-invalid' | 'key-unknown' | 'origin-mismatch',
    message: string,
  ) {
    super(message);
    this.name = 'DeliveryVerificationError';
  }
}

/**
 * Open one delivery: decrypt with the recipient's private encryption key, find
 * the signing key named by the JWS kid among the origin agency's keys (from the
 * registry, with history), check it was valid when the broker received the
 * notice, verify, and check that the signed notice says what the delivery's
 * labels say (origin agency, notice id).
 */
export async function openDelivery(
  delivery: { jwe: string; notice_id: string; origin: { agency: string }; received_at: string },
  recipientEncryptionKey: JWK,
  originKeys: (agency: string) => Promise<readonly AgencyKey[]>,
): Promise<OpenedDelivery> {
  let signed: Uint8Array;
  try {
    ({ signed } = await decryptDelivery(delivery.jwe, recipientEncryptionKey));
  } catch (e) {
    throw new DeliveryVerificationError('decrypt-failed', `the delivery does not decrypt with this key: ${(e as Error).message}`);
  }
  const jws = new TextDecoder().decode(signed);
  const parts = jws.split('.');
  if (parts.length !== 3) throw new DeliveryVerificationError('signature-invalid', 'the content is not a compact JWS');
  let header: { kid?: unknown; alg?: unknown };
  try {
    header = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8')) as { kid?: unknown; alg?: unknown };
  } catch {
    throw new DeliveryVerificationError('signature-invalid', 'the JWS header is not JSON');
  }
  const keys = await originKeys(delivery.origin.agency);
  const key = keys.find((k) => k.kid === header.kid && k.use === 'sig');
  if (!key) throw new DeliveryVerificationError('key-unknown', `the signing key ${String(header.kid)} is not a key of ${delivery.origin.agency}`);
  if (keyStateAt(key, new Date(delivery.received_at)) !== 'active') throw new DeliveryVerificationError('key-unknown', `the signing key ${key.kid} was not valid when the notice was received`);
  const algorithms = signatureAlgsFor(key.jwk);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, await importJWK(key.jwk as JWK, algorithms[0]), { algorithms }));
  } catch (e) {
    throw new DeliveryVerificationError('signature-invalid', `the origin signature does not verify: ${(e as Error).message}`);
  }
  const notice = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
  const origin = notice.origin as { agency?: unknown } | undefined;
  if (origin?.agency !== delivery.origin.agency || notice.id !== delivery.notice_id) {
    throw new DeliveryVerificationError('origin-mismatch', 'the signed notice does not match the delivery labels');
  }
  return { notice, jws, signerKid: key.kid };
}
