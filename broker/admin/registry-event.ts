import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { CompactSign, compactVerify, importJWK, type JWK } from 'jose';
import type { BrokerSigningKey } from '../keys/broker-keys.js';
import type { RegistryLogEntry } from '../log/entry.js';
import type { AgencyKey, OpenPgpAgencyKey } from '../registry/model.js';

/**
 * Registry events: the evidence of every key change made through the admin
 * API. Each is a canonical JSON document signed by the broker (compact JWS,
 * typ liaison-registry-event+jws), kept in REGISTRY_EVENTS and committed to by a
 * `registry` log entry. A signing-key rotation is signed by the outgoing key, so
 * the chain of broker keys can be followed from the first to the current one.
 */
export const REGISTRY_EVENT_TYP = 'liaison-registry-event+jws';

export type RegistryEventType = 'broker-encryption-keys-rotated' | 'broker-signing-key-rotated' | 'agency-key-added' | 'agency-key-rotated' | 'agency-key-revoked';

/** A key as it enters the registry (public parts only). */
export type AddedAgencyKey = Omit<AgencyKey, 'status' | 'revoked_at'> | Omit<OpenPgpAgencyKey, 'status' | 'revoked_at'>;

export interface RegistryEvent {
  id: string;
  type: RegistryEventType;
  subject: { broker: string } | { agency: string };
  at: string;
  actor: { agency: string; kid: string };
  /** Broker keys: public JWKs. Agency keys: the registry records of the new keys. */
  added?: (JWK | AddedAgencyKey)[];
  /** Keys rotated out: until when they still work (`until`: decrypt_until, retired_at or not_after). */
  retired?: { kid: string; until: string }[];
  revoked?: { kid: string; revoked_at: string }[];
  /** Broker encryption keys whose grace period had ended and whose private parts were destroyed. */
  destroyed?: string[];
  reason?: string;
}

const jcs = canonicalize as unknown as (v: unknown) => string | undefined;
export const sha256Hex = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

export async function signRegistryEvent(key: BrokerSigningKey, event: RegistryEvent): Promise<string> {
  const text = jcs(event);
  if (text === undefined) throw new Error('registry event cannot be canonicalized');
  return new CompactSign(new TextEncoder().encode(text)).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: REGISTRY_EVENT_TYP }).sign(key.privateKey);
}

/** Verify a registry event against the broker's signing key history (GET /v1/keys). */
export async function verifyRegistryEvent(jws: string, brokerKeys: readonly JWK[]): Promise<{ event: RegistryEvent; kid: string }> {
  const { payload, protectedHeader } = await compactVerify(
    jws,
    async (h) => {
      const jwk = brokerKeys.find((k) => k.kid === h.kid && k.kty === 'OKP' && k.crv === 'Ed25519');
      if (!jwk) throw new Error(`no broker signing key ${h.kid ?? '(none)'}`);
      return importJWK(jwk, 'EdDSA');
    },
    { algorithms: ['EdDSA'] },
  );
  if (protectedHeader.typ !== REGISTRY_EVENT_TYP) throw new Error(`not a registry event (typ ${String(protectedHeader.typ)})`);
  return { event: JSON.parse(new TextDecoder().decode(payload)) as RegistryEvent, kid: String(protectedHeader.kid) };
}

export function registryLogEntry(event: RegistryEvent, jws: string, signerKid: string): RegistryLogEntry {
  const kids = [...(event.added ?? []).map((k) => String(k.kid)), ...(event.retired ?? []).map((r) => r.kid), ...(event.revoked ?? []).map((r) => r.kid)];
  return { v: 1, kind: 'registry', event_id: event.id, event: event.type, subject: event.subject, kids, actor: event.actor.agency, signer_kid: signerKid, sha256: sha256Hex(jws), received_at: event.at };
}
