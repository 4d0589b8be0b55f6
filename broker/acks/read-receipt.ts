import type { JWK } from 'jose';
import { signRecipientJws, verifyRecipientJws, type RecipientKey } from '../keys/recipient-jws.js';

/** `typ` of a recipient's read receipt (explicit typing, RFC 8725 §3.11). */
export const ACK_TYP = 'liaison-ack+jws';

/** What a recipient signs to acknowledge a delivery. Exactly these members. */
export interface AckClaims {
  notice_id: string;
  /** The DELIVERIES cursor of the delivery acknowledged. */
  cursor: number;
  /** Lower-case hex SHA-256 of the origin's signed notice (the JWS inside the delivery). */
  sha256: string;
  /** RFC 3339, the recipient's clock. */
  acked_at: string;
}

/** The recipient's side: sign a read receipt with the agency's own signing key (private JWK). */
export function signAck(claims: AckClaims, signingKey: JWK): Promise<string> {
  return signRecipientJws(claims, signingKey, ACK_TYP);
}

/**
 * Anyone's side (the sender, an auditor): verify a read receipt against the
 * recipient's key history (GET /v1/registry/agencies/:id/keys), with the key
 * valid at `at` (when the broker received the receipt).
 */
export async function verifyAck(
  jws: string,
  recipientKeys: readonly RecipientKey[],
  at: Date,
): Promise<{ claims: AckClaims; kid: string }> {
  const { payload, kid } = await verifyRecipientJws(jws, recipientKeys, at, ACK_TYP, 'read receipt');
  return { claims: payload as AckClaims, kid };
}
