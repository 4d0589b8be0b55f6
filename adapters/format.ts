import type { PrivateKey } from 'openpgp';
import type { EnvelopeAdapter } from '../broker/core/envelope.js';
import type { CodeOf } from '../broker/core/errors.js';
import type { Agency, RegistryJwk, RegistrySnapshot } from '../broker/registry/model.js';
/**
 * What one envelope format (JOSE, OpenPGP) implements: it opens incoming
 * envelopes (ingest's EnvelopeAdapter, broker/core/envelope.ts), verifies
 * stored signed objects for the audit, and seals deliveries. Formats are
 * listed in broker/formats/registry.ts; the broker asks that registry, never a
 * concrete adapter, and an unknown format name is a `format-unknown` error.
 * Here rather than in broker/core: it speaks of registry records, and core
 * imports nothing outside core.
 */

/** What a format's opener may use: the broker's keys and the live registry. */
export interface OpenerDeps {
  /** The broker's OpenPGP private keys (every one accepted for decryption); absent when it has none. */
  openPgpDecryptionKeys?: readonly PrivateKey[] | undefined;
  registry: () => RegistrySnapshot;
  /** Largest envelope accepted, in bytes (the HTTP body limit). */
  maxEnvelopeBytes: number;
  now?: (() => Date) | undefined;
}

/** One key as the registry history knew it (the audit archive's `agency_keys`). */
export interface HistoricalAgencyKey {
  agency: string;
  kid: string;
  use: 'sig' | 'enc';
  /** The registered name of the key's format. */
  format: string;
  /** JOSE keys: the public JWK. */
  jwk?: RegistryJwk;
  /** OpenPGP keys: the armored certificate. */
  armored?: string;
  status: 'active' | 'revoked';
  not_before?: string;
  not_after?: string;
  revoked_at?: string;
}

/** The key material fields of a historical key (`jwk` or `armored`), and an id that is equal for equal material. */
export interface KeyMaterial {
  fields: Pick<HistoricalAgencyKey, 'jwk' | 'armored'>;
  id: string;
}

export type OriginProblemCode = CodeOf<'origin-check'>;

/** What a log entry says about the signer of the notice it commits to. */
export interface StoredSignerClaim {
  signerKid: string;
  originAgency: string | undefined;
  /** The entry's received_at, as written, and as a time. */
  receivedAt: string;
  at: Date;
}

/** The audit's side of a format: checks stored signed objects against the agency key history. */
export interface StoredSignatureVerifier {
  /** How many checks may run at once (1: one after the other). */
  readonly concurrency: number;
  /** Undefined when the stored object verifies with the claimed key, of the origin agency, valid at `at`; else what is wrong. */
  verify(
    signed: Uint8Array,
    claim: StoredSignerClaim,
  ): Promise<{ code: OriginProblemCode; message: string } | undefined>;
}

/** A delivery's recipient key, chosen at plan time (pure): its kid, and for JOSE the public JWK. */
export interface DeliveryKey {
  kid: string;
  jwk?: RegistryJwk;
}

/** One delivery as published: `body` the message's bytes, `kid` the key it is encrypted to. */
export interface SealedDelivery {
  body: Uint8Array;
  kid: string;
}

/** The router's side of a format: seals one notice to each of its recipients in this format. */
export interface FormatDeliverySealer {
  /**
   * One result per recipient, in order; undefined for a recipient that cannot be
   * served now (no usable encryption key). `format` is the origin's format.
   */
  seal(
    signed: Uint8Array,
    recipients: readonly (DeliveryKey & { agency: Agency })[],
    meta: { noticeId: string; format: string },
    at: Date,
  ): Promise<(SealedDelivery | undefined)[]>;
  /** The sealing thread's id, when it seals off the event loop (for the per-thread CPU metric). */
  readonly threadId?: number | undefined;
  close?(): Promise<void>;
}

/** What a format's delivery sealer may use. */
export interface SealerDeps {
  /** The broker's current OpenPGP private key (it signs OpenPGP deliveries); absent when it has none. */
  openPgpSigningKey?: PrivateKey | undefined;
}

/** The inbox's side of a format: how a stored delivery in this format is served, and what its body must look like. */
export interface InboxDeliveryShape {
  /** The field of GET /v1/inbox that carries the delivery's text. */
  readonly field: 'jwe' | 'openpgp' | 'e2e';
  /** Why a stored body is not a delivery in this format (short, never content); null when it is one. */
  defect(body: Uint8Array): string | null;
}

/** One envelope format: what broker/formats/registry.ts registers. */
export interface EnvelopeFormat<Name extends string = string> {
  readonly name: Name;
  /**
   * End-to-end formats: the broker cannot open the envelope; each recipient is
   * delivered the envelope as received, in this same format, whatever its
   * `delivery_format` (routing/plan.ts).
   */
  readonly deliveredAsReceived?: boolean;
  /** Ingest: the opener of incoming envelopes; undefined when the broker cannot open them (no key for it). */
  opener(deps: OpenerDeps): EnvelopeAdapter | undefined;
  /** Audit: the agency record field that lists keys of this format. */
  readonly agencyKeysField: 'keys' | 'openpgp_keys';
  /** Audit: the key material of one key record of this format; undefined when the record has none. */
  keyMaterial(record: Record<string, unknown>): KeyMaterial | undefined;
  /** Audit: a verifier over the agency key history (keys of every format; it picks its own). */
  storedSignatures(history: readonly HistoricalAgencyKey[]): StoredSignatureVerifier;
  /** Routing: the key a delivery in this format to `agency` would use at `at`; undefined when it has none. */
  deliveryKey(agency: Agency, at: Date): DeliveryKey | undefined;
  /** Routing: the sealer of deliveries in this format; undefined when the broker cannot make them. */
  deliverySealer(deps: SealerDeps): FormatDeliverySealer | undefined;
  /** Inbox: how a stored delivery in this format is checked and served (every gateway serves every format, sealer or not). */
  readonly inboxDelivery: InboxDeliveryShape;
}
