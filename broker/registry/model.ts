/** The member registry as plain data, and an immutable snapshot with the lookups the pipeline needs. Pure: no I/O. */

/** operator: the hub's own staff, who manage keys through the admin API (never a notice sender or recipient by this role). */
export type Role = 'publish' | 'subscribe' | 'audit' | 'operator';

export interface RegistryJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  kid?: string;
  alg?: string;
  use?: string;
}

export interface AgencyKey {
  kid: string;
  use: 'sig' | 'enc';
  jwk: RegistryJwk;
  status: 'active' | 'revoked';
  not_before?: string;
  not_after?: string;
  revoked_at?: string;
}

/**
 * An agency's OpenPGP certificate (public key block). Kept apart from the JWK
 * `keys` so that code reading JWKs never meets a key without one. The kid is the
 * v4 primary key fingerprint, upper-case hex; the status and validity window
 * work as for JWKs, and the certificate's own expiry and revocation signatures
 * are checked too (adapters/openpgp/signers.ts).
 */
export interface OpenPgpAgencyKey {
  kid: string;
  use: 'sig' | 'enc';
  format: 'openpgp';
  /** ASCII-armored public key block (no secret key material). */
  armored: string;
  status: 'active' | 'revoked';
  not_before?: string;
  not_after?: string;
  revoked_at?: string;
}

/** A client certificate the network CA issued to an agency (mTLS); listed to revoke it network-wide at once. */
export interface AgencyCertificate {
  /** Serial number, hex (case and leading zeros do not matter). */
  serial: string;
  status: 'active' | 'revoked';
  revoked_at?: string;
  not_after?: string;
}

export interface Agency {
  id: string;
  country: string;
  name: string;
  roles: Role[];
  keys: AgencyKey[];
  openpgp_keys?: OpenPgpAgencyKey[];
  webhook?: { url: string };
  /** A registered envelope format name (broker/formats/registry.ts); absent: the default (JOSE). Any other name: not delivered (`format-unknown`). */
  delivery_format?: string;
  /** Client certificates (mTLS); a revoked one is refused by every gateway. */
  certificates?: AgencyCertificate[];
  changed_by?: ChangedBy;
}

/** The registry event (admin API) that last set a record as a whole, and its log index; absent on seeded records. */
export interface ChangedBy {
  event_id: string;
  log_index: number;
}

export interface Operation {
  id: string;
  name: string;
  status: 'active' | 'inactive';
  members: string[];
  categories: string[];
  start?: string;
  end?: string;
  /** Days a notice is kept after it was received; absent: the network default (config retentionDays). */
  retention_days?: number;
  /** Days after it was received that a notice is due for review; absent: the network default (config reviewDays). */
  review_days?: number;
  /** Notices are sealed by the sender for the recipients (docs/end-to-end.md): the hub routes them unread. Default false. */
  end_to_end?: boolean;
  changed_by?: ChangedBy;
}

export interface RegistrySeed {
  agencies: Agency[];
  operations: Operation[];
}

export type KeyState = 'active' | 'revoked' | 'not-yet-valid' | 'expired';

/** Whether a key may be used at `at`: its status, revocation time and validity window. */
export function keyStateAt(
  key: Pick<AgencyKey, 'status' | 'not_before' | 'not_after' | 'revoked_at'>,
  at: Date,
): KeyState {
  const t = at.getTime();
  if (key.status === 'revoked' && (key.revoked_at === undefined || Date.parse(key.revoked_at) <= t)) return 'revoked';
  if (key.not_before !== undefined && Date.parse(key.not_before) > t) return 'not-yet-valid';
  if (key.not_after !== undefined && Date.parse(key.not_after) < t) return 'expired';
  return 'active';
}

/** Key types a delivery can be encrypted to with ECDH-ES+A256KW. */
const usableEncKey = (jwk: RegistryJwk) =>
  (jwk.kty === 'EC' && jwk.crv === 'P-256') || (jwk.kty === 'OKP' && jwk.crv === 'X25519');

/** Every encryption key of the agency usable at `at` (active, of a type a JWE can be encrypted to), in record order. */
export function encryptionKeysAt(keys: readonly AgencyKey[], at: Date): AgencyKey[] {
  return keys.filter((key) => key.use === 'enc' && keyStateAt(key, at) === 'active' && usableEncKey(key.jwk));
}

/**
 * The agency's current encryption key at `at`: among its active `use: enc` keys
 * of a usable type, the one that became valid last (the newest, by not_before,
 * then by position in the record). Undefined when it has none.
 */
export function currentEncryptionKey(keys: readonly AgencyKey[], at: Date): AgencyKey | undefined {
  let best: { key: AgencyKey; nb: number; i: number } | undefined;
  keys.forEach((key, i) => {
    if (key.use !== 'enc' || keyStateAt(key, at) !== 'active' || !usableEncKey(key.jwk)) return;
    const nb = key.not_before === undefined ? 0 : Date.parse(key.not_before);
    if (!best || nb > best.nb || (nb === best.nb && i > best.i)) best = { key, nb, i };
  });
  return best?.key;
}

/** Whether an operation is running on `at` (dates are inclusive calendar days, UTC). */
export function operationActiveAt(op: Operation, at: Date): boolean {
  if (op.status !== 'active') return false;
  const day = at.toISOString().slice(0, 10);
  if (op.start !== undefined && day < op.start.slice(0, 10)) return false;
  if (op.end !== undefined && day > op.end.slice(0, 10)) return false;
  return true;
}

export class RegistrySnapshot {
  readonly #agencies: ReadonlyMap<string, Agency>;
  readonly #operations: ReadonlyMap<string, Operation>;
  readonly #keys: ReadonlyMap<string, { agency: Agency; key: AgencyKey }>;

  constructor(agencies: Iterable<Agency>, operations: Iterable<Operation>) {
    const a = new Map<string, Agency>();
    for (const ag of agencies) a.set(ag.id, ag);
    const o = new Map<string, Operation>();
    for (const op of operations) o.set(op.id, op);
    const keys = new Map<string, { agency: Agency; key: AgencyKey }>();
    const ambiguous = new Set<string>();
    for (const ag of a.values()) {
      for (const key of ag.keys) {
        if (keys.has(key.kid)) ambiguous.add(key.kid);
        keys.set(key.kid, { agency: ag, key });
      }
    }
    // A kid claimed twice names no key at all: better refused than attributed to the wrong agency.
    for (const kid of ambiguous) keys.delete(kid);
    this.#agencies = a;
    this.#operations = o;
    this.#keys = keys;
  }

  static fromSeed(seed: RegistrySeed): RegistrySnapshot {
    return new RegistrySnapshot(seed.agencies, seed.operations);
  }

  static empty(): RegistrySnapshot {
    return new RegistrySnapshot([], []);
  }

  agency(id: string): Agency | undefined {
    return this.#agencies.get(id);
  }

  operation(id: string): Operation | undefined {
    return this.#operations.get(id);
  }

  key(kid: string): { agency: Agency; key: AgencyKey } | undefined {
    return this.#keys.get(kid);
  }

  agencies(): Agency[] {
    return [...this.#agencies.values()];
  }

  operations(): Operation[] {
    return [...this.#operations.values()];
  }
}
