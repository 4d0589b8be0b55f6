import type { CryptoKey } from 'jose';
/**
 * The contract between the pipeline and an envelope adapter (JOSE, OpenPGP).
 * Steps 1-3 of the data flow (parse, decrypt, verify) happen inside the adapter;
 * everything after "open the envelope" is shared by the pipeline. The rest of
 * a format (audit, delivery) is in adapters/format.ts.
 */

/** A registered signing key of an agency, resolved and checked (status, validity) by the pipeline. */
export interface ResolvedSigner {
  kid: string;
  agencyId: string;
  /** The imported public key and the algorithms it may sign with. */
  key: CryptoKey;
  algorithms: readonly string[];
}

export interface EnvelopeContext {
  /** The broker's private decryption key for a kid, or undefined. */
  decryptionKey(kid: string): CryptoKey | undefined;
  /** Resolve a signer's key id; throws key-unknown or key-revoked. */
  resolveSigner(kid: string): Promise<ResolvedSigner>;
}

export interface OpenedEnvelope {
  /** The registered name of the format that opened it. */
  format: string;
  /** The origin's signed object exactly as received (stored in NOTICES, hashed into the log). */
  signed: Uint8Array;
  /** The signed payload: the notice JSON bytes. */
  payload: Uint8Array;
  /** Who signed: the registered key id (a JWK kid, or an OpenPGP certificate fingerprint) and its agency. */
  signer: Pick<ResolvedSigner, 'kid' | 'agencyId'>;
  /**
   * End-to-end formats only: the payload is a routing header the format has
   * validated (not a notice), and these are the key ids the body is sealed
   * for, checked by the pipeline against the recipients the sharing rules give.
   */
  sealedFor?: readonly string[];
}

/** Ingest's side of a format: opens one envelope. */
export interface EnvelopeAdapter {
  readonly format: string;
  /** Media types (without parameters) this adapter opens. */
  readonly mediaTypes: readonly string[];
  open(body: string, ctx: EnvelopeContext): Promise<OpenedEnvelope>;
}
