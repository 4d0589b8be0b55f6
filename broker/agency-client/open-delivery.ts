import { compactVerify, importJWK, type JWK } from 'jose';
import { decrypt, readKey, readKeys, readMessage, readPrivateKey, type PrivateKey, type PublicKey } from 'openpgp';
import { strictConfig } from '../../adapters/openpgp/decrypt-message.js';
import { CodedError, type CodeOf } from '../core/errors.js';
import { signatureAlgsFor } from '../keys/jwk.js';
import { keyStateAt, type AgencyKey, type OpenPgpAgencyKey } from '../registry/model.js';
import { decryptDelivery, DELIVERY_CTY } from '../../adapters/jose/encrypt.js';

/** What an agency's own software does with a delivery: decrypt it, then verify the origin's signature itself. */
export interface OpenedDelivery {
  /** For an OpenPGP delivery: the fingerprint of the broker key that signed it. */
  brokerFingerprint?: string;
  notice: Record<string, unknown>;
  /** The origin's signed notice exactly as stored: a compact JWS, or an armored OpenPGP signed message (`format: 'openpgp'`). */
  jws: string;
  signerKid: string;
  /** The origin's envelope format (from the JWE `cty`): a format a delivery can carry (DELIVERY_CTY). */
  format: keyof typeof DELIVERY_CTY;
}

/**
 * openpgp.js settings for an OpenPGP delivery, which anyone can encrypt to the
 * agency's public key: it is decrypted (and decompressed) before the broker's
 * signature is checked, so grammar is enforced and decompression bounded. A
 * delivery carries one notice, at most the gateway's body limit (1 MiB) as
 * stored; 8 MiB leaves room for any configured limit.
 */
const DELIVERY_CONFIG = strictConfig({ maxPlaintextBytes: 8 * 1024 * 1024 });

/** Leeway for an OpenPGP signature dated slightly after the broker's receipt time (clock skew). */
const OPENPGP_SKEW_MS = 5 * 60_000;

export class DeliveryVerificationError extends CodedError<CodeOf<'delivery'>> {}

/**
 * Open one delivery: decrypt with the recipient's private encryption key, find
 * the signing key named by the JWS kid among the origin agency's keys (from the
 * registry, with history), check it was valid when the broker received the
 * notice, verify, and check that the signed notice says what the delivery's
 * labels say (origin agency, notice id).
 */
export async function openDelivery(
  delivery: { jwe?: string | undefined; notice_id: string; origin: { agency: string }; received_at: string },
  recipientEncryptionKey: JWK,
  originKeys: (agency: string) => Promise<readonly AgencyKey[]>,
  /** The origin's OpenPGP certificates with history (`openpgp_keys` of GET /v1/registry/agencies/:id/keys); needed for OpenPGP-origin notices. */
  originOpenPgpKeys?: (agency: string) => Promise<readonly OpenPgpAgencyKey[]>,
): Promise<OpenedDelivery> {
  if (typeof delivery.jwe !== 'string')
    throw new DeliveryVerificationError(
      'decrypt-failed',
      'not a JOSE delivery (an OpenPGP delivery is opened with OpenPGP)',
    );
  let signed: Uint8Array;
  let cty: unknown;
  try {
    // A flattened JWE (or, stored before one content encryption per notice, a compact one); cty is read under the AAD.
    ({
      signed,
      protectedHeader: { cty },
    } = await decryptDelivery(delivery.jwe, recipientEncryptionKey));
  } catch (e) {
    throw new DeliveryVerificationError(
      'decrypt-failed',
      `the delivery does not decrypt with this key: ${(e as Error).message}`,
    );
  }
  const opened =
    cty === DELIVERY_CTY.openpgp
      ? await verifyOpenPgp(signed, delivery, originOpenPgpKeys)
      : await verifyJws(signed, delivery, originKeys);
  return matchingLabels(opened, delivery);
}

function matchingLabels(
  opened: OpenedDelivery,
  delivery: { notice_id: string; origin: { agency: string } },
): OpenedDelivery {
  const notice = opened.notice;
  const origin = notice.origin as { agency?: unknown } | undefined;
  if (origin?.agency !== delivery.origin.agency || notice.id !== delivery.notice_id) {
    throw new DeliveryVerificationError('origin-mismatch', 'the signed notice does not match the delivery labels');
  }
  return opened;
}

/**
 * Open an OpenPGP delivery (`delivery_format: openpgp`, docs/openpgp.md):
 * decrypt with the agency's OpenPGP private key, require exactly one signature
 * and that it is the broker's (its published OpenPGP key), then verify the
 * origin's signature on the notice inside (a compact JWS or an armored OpenPGP
 * signed message) as for a JWE delivery.
 */
export async function openOpenPgpDelivery(
  delivery: { openpgp?: string | undefined; notice_id: string; origin: { agency: string }; received_at: string },
  /** The agency's OpenPGP private key, armored and unprotected (`openpgp.private_armored` of its credentials). */
  recipientKey: string,
  /** The broker's OpenPGP public key(s), armored (`openpgp` of GET /v1/keys). */
  brokerKeys: string,
  originKeys: (agency: string) => Promise<readonly AgencyKey[]>,
  originOpenPgpKeys: (agency: string) => Promise<readonly OpenPgpAgencyKey[]>,
): Promise<OpenedDelivery> {
  if (typeof delivery.openpgp !== 'string')
    throw new DeliveryVerificationError('decrypt-failed', 'not an OpenPGP delivery');
  let key: PrivateKey;
  let brokers: PublicKey[];
  try {
    key = await readPrivateKey({ armoredKey: recipientKey });
    brokers = await readKeys({ armoredKeys: brokerKeys });
  } catch (e) {
    throw new DeliveryVerificationError(
      'key-unknown',
      `the agency's or the broker's OpenPGP key cannot be read: ${(e as Error).message}`,
    );
  }
  let data: Uint8Array;
  let signatures: Awaited<ReturnType<typeof decrypt>>['signatures'];
  try {
    const message = await readMessage({ armoredMessage: delivery.openpgp, config: DELIVERY_CONFIG });
    ({ data, signatures } = (await decrypt({
      message,
      decryptionKeys: key,
      verificationKeys: brokers,
      format: 'binary',
      config: DELIVERY_CONFIG,
    })) as { data: Uint8Array; signatures: typeof signatures });
  } catch (e) {
    throw new DeliveryVerificationError(
      'decrypt-failed',
      `the delivery does not decrypt with this agency's OpenPGP key: ${(e as Error).message}`,
    );
  }
  const signature = signatures[0];
  if (!signature || signatures.length !== 1)
    throw new DeliveryVerificationError(
      'signature-invalid',
      "the delivery does not carry exactly one signature (the broker's)",
    );
  try {
    await signature.verified;
  } catch (e) {
    throw new DeliveryVerificationError(
      'signature-invalid',
      `the delivery is not signed by the broker's OpenPGP key: ${(e as Error).message}`,
    );
  }
  const broker =
    brokers.find((b) => b.getKeyIDs().some((id) => id.equals(signature.keyID)))?.getFingerprint() ??
    signature.keyID.toHex();
  // The literal data is the origin's signed notice as stored: an armored OpenPGP signed message, else a compact JWS.
  const opened =
    new TextDecoder().decode(data.subarray(0, 27)) === '-----BEGIN PGP MESSAGE-----'
      ? await verifyOpenPgp(data, delivery, originOpenPgpKeys)
      : await verifyJws(data, delivery, originKeys);
  return { ...matchingLabels(opened, delivery), brokerFingerprint: broker.toUpperCase() };
}

function parseNotice(payload: Uint8Array): Record<string, unknown> {
  try {
    const notice = JSON.parse(new TextDecoder().decode(payload)) as unknown;
    if (notice && typeof notice === 'object' && !Array.isArray(notice)) return notice as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new DeliveryVerificationError('signature-invalid', 'the signed content is not a JSON notice');
}

export async function verifyJws(
  signed: Uint8Array,
  delivery: { origin: { agency: string }; received_at: string },
  originKeys: (agency: string) => Promise<readonly AgencyKey[]>,
): Promise<OpenedDelivery> {
  const jws = new TextDecoder().decode(signed);
  const parts = jws.split('.');
  if (parts.length !== 3) throw new DeliveryVerificationError('signature-invalid', 'the content is not a compact JWS');
  let header: { kid?: unknown; alg?: unknown };
  try {
    header = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8')) as {
      kid?: unknown;
      alg?: unknown;
    };
  } catch {
    throw new DeliveryVerificationError('signature-invalid', 'the JWS header is not JSON');
  }
  const keys = await originKeys(delivery.origin.agency);
  const key = keys.find((k) => k.kid === header.kid && k.use === 'sig');
  if (!key)
    throw new DeliveryVerificationError(
      'key-unknown',
      `the signing key ${String(header.kid)} is not a key of ${delivery.origin.agency}`,
    );
  if (keyStateAt(key, new Date(delivery.received_at)) !== 'active')
    throw new DeliveryVerificationError(
      'key-unknown',
      `the signing key ${key.kid} was not valid when the notice was received`,
    );
  const algorithms = signatureAlgsFor(key.jwk);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, await importJWK(key.jwk as JWK, algorithms[0]), { algorithms }));
  } catch (e) {
    throw new DeliveryVerificationError(
      'signature-invalid',
      `the origin signature does not verify: ${(e as Error).message}`,
    );
  }
  return { notice: parseNotice(payload), jws, signerKid: key.kid, format: 'jose' };
}

/**
 * An OpenPGP-origin notice: the armored signed message as stored. Exactly one
 * signature, by a certificate registered for the origin (`use: sig`) whose
 * record was active, and which was a valid signing key, when the broker
 * received the notice.
 */
export async function verifyOpenPgp(
  signed: Uint8Array,
  delivery: { origin: { agency: string }; received_at: string },
  originOpenPgpKeys: ((agency: string) => Promise<readonly OpenPgpAgencyKey[]>) | undefined,
): Promise<OpenedDelivery> {
  if (!originOpenPgpKeys)
    throw new DeliveryVerificationError('key-unknown', "an OpenPGP-origin notice needs the origin's OpenPGP keys");
  const armored = new TextDecoder().decode(signed);
  let message: Awaited<ReturnType<typeof readMessage>>;
  try {
    message = await readMessage({ armoredMessage: armored });
  } catch (e) {
    throw new DeliveryVerificationError(
      'signature-invalid',
      `the content is not an OpenPGP message: ${(e as Error).message}`,
    );
  }
  const issuers = message.getSigningKeyIDs();
  const issuer = issuers[0];
  if (!issuer) throw new DeliveryVerificationError('signature-invalid', 'the message is not signed');
  if (issuers.length !== 1)
    throw new DeliveryVerificationError('signature-invalid', 'exactly one signature is expected');
  const at = new Date(delivery.received_at);
  let found: { record: OpenPgpAgencyKey; key: PublicKey } | undefined;
  for (const record of await originOpenPgpKeys(delivery.origin.agency)) {
    if (record.use !== 'sig') continue;
    let key: PublicKey;
    try {
      key = await readKey({ armoredKey: record.armored });
    } catch {
      continue;
    }
    if (key.isPrivate() || key.getFingerprint().toUpperCase() !== record.kid.toUpperCase()) continue;
    if (key.getKeyIDs().some((id) => id.equals(issuer))) {
      found = { record, key };
      break;
    }
  }
  if (!found)
    throw new DeliveryVerificationError(
      'key-unknown',
      `the OpenPGP signing key ${issuer.toHex().toUpperCase()} is not a key of ${delivery.origin.agency}`,
    );
  if (keyStateAt(found.record, at) !== 'active')
    throw new DeliveryVerificationError(
      'key-unknown',
      `the signing key ${found.record.kid} was not valid when the notice was received`,
    );
  try {
    const verifications = await message.verify([found.key], new Date(at.getTime() + OPENPGP_SKEW_MS));
    const verification = verifications[0];
    if (!verification || verifications.length !== 1) throw new Error('not exactly one signature');
    await verification.verified;
  } catch (e) {
    throw new DeliveryVerificationError(
      'signature-invalid',
      `the origin signature does not verify: ${(e as Error).message}`,
    );
  }
  const payload: unknown = message.getLiteralData();
  if (!(payload instanceof Uint8Array))
    throw new DeliveryVerificationError('signature-invalid', 'the literal data cannot be read');
  return { notice: parseNotice(payload), jws: armored, signerKid: found.record.kid, format: 'openpgp' };
}
