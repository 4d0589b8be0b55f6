import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import canonicalize from 'canonicalize';
import { CompactSign, type JWK } from 'jose';
import { sha256Hex } from '../core/sha256.js';
import type { BrokerSigningKey } from '../keys/broker-keys.js';
import type { RegistryLogEntry } from '../log/entry.js';
import type { Agency, AgencyKey, OpenPgpAgencyKey, Operation } from '../registry/model.js';

/**
 * Registry events: the evidence of every change made through the admin API
 * (keys, agency and operation records). Each is a canonical JSON document signed by the broker (compact JWS,
 * typ liaison-registry-event+jws), kept in REGISTRY_EVENTS and committed to by a
 * `registry` log entry. A signing-key rotation is signed by the outgoing key, so
 * the chain of broker keys can be followed from the first to the current one.
 */
export const REGISTRY_EVENT_TYP = 'liaison-registry-event+jws';

export type RegistryEventType =
  | 'broker-encryption-keys-rotated'
  | 'broker-signing-key-rotated'
  | 'broker-storage-key-rotated'
  | 'agency-key-added'
  | 'agency-key-rotated'
  | 'agency-key-revoked'
  | 'agency-set'
  | 'operation-set'
  | 'notice-erased';

/** A key as it enters the registry (public parts only). */
export type AddedAgencyKey = Omit<AgencyKey, 'status' | 'revoked_at'> | Omit<OpenPgpAgencyKey, 'status' | 'revoked_at'>;

/** An agency record as agency-set sets it: everything but its keys, which only key events change (a new agency's come in `added`). */
export type AgencyFields = Omit<Agency, 'keys' | 'openpgp_keys' | 'changed_by'>;

export interface RegistryEvent {
  id: string;
  type: RegistryEventType;
  subject: { broker: string } | { agency: string } | { operation: string } | { notice: string };
  at: string;
  /** Who asked: an operator agency (with the kid of its assertion), or the broker itself (automatic erasure at the end of retention). */
  actor: { agency: string; kid: string } | { broker: string; kid: string };
  /** Broker keys: public JWKs. Agency keys: the registry records of the new keys. */
  added?: (JWK | AddedAgencyKey)[];
  /** Keys rotated out: until when they still work (`until`: decrypt_until, retired_at or not_after). */
  retired?: { kid: string; until: string }[];
  revoked?: { kid: string; revoked_at: string }[];
  /** Broker encryption keys whose grace period had ended and whose private parts were destroyed. */
  destroyed?: string[];
  /** agency-set: the agency's record but its keys; operation-set: the operation's record. */
  record?: AgencyFields | Omit<Operation, 'changed_by'>;
  reason?: string;
}

const jcs = canonicalize;

export async function signRegistryEvent(key: BrokerSigningKey, event: RegistryEvent): Promise<string> {
  const text = jcs(event);
  if (text === undefined) throw new Error('registry event cannot be canonicalized');
  return new CompactSign(new TextEncoder().encode(text))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: REGISTRY_EVENT_TYP })
    .sign(key.privateKey);
}

/**
 * Open a registry event: a compact JWS (EdDSA, typ liaison-registry-event+jws)
 * by a key of the broker's signing key history (GET /v1/keys, or an audit
 * archive's broker_keys). Synchronous (node:crypto), so the offline audit uses
 * it too. Throws an Error that says what is wrong.
 */
export function openRegistryEvent(
  jws: string,
  brokerKeys: readonly { kty?: unknown; crv?: unknown; x?: unknown; kid?: unknown }[],
): { event: RegistryEvent; kid: string } {
  const [h, p, sig, ...rest] = jws.split('.');
  if (rest.length > 0 || !h || !p || !sig) throw new Error('is not a compact JWS');
  let header: { alg?: unknown; kid?: unknown; typ?: unknown };
  let event: RegistryEvent;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as typeof header;
    event = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as RegistryEvent;
  } catch {
    throw new Error('is not a compact JWS of JSON');
  }
  if (header.alg !== 'EdDSA' || header.typ !== REGISTRY_EVENT_TYP || typeof header.kid !== 'string')
    throw new Error('header is not that of a broker registry event');
  const jwk = brokerKeys.find(
    (k) => k.kid === header.kid && k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.x === 'string',
  );
  if (!jwk) throw new Error(`its signing key ${header.kid} is not in the broker key history`);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x as string }, format: 'jwk' });
  if (!cryptoVerify(null, Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url')))
    throw new Error('the broker signature does not verify');
  return { event, kid: header.kid };
}

export function registryLogEntry(event: RegistryEvent, jws: string, signerKid: string): RegistryLogEntry {
  const kids = [
    ...(event.added ?? []).map((k) => String(k.kid)),
    ...(event.retired ?? []).map((r) => r.kid),
    ...(event.revoked ?? []).map((r) => r.kid),
  ];
  return {
    v: 1,
    kind: 'registry',
    event_id: event.id,
    event: event.type,
    subject: event.subject,
    kids,
    actor: 'agency' in event.actor ? event.actor.agency : event.actor.broker,
    signer_kid: signerKid,
    sha256: sha256Hex(jws),
    received_at: event.at,
  };
}
