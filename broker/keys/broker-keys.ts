import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CryptoKey, JWK } from 'jose';
import type { StorageKey } from '../vault/seal.js';
import { importKey, makeKeyPair, publicPart } from './jwk.js';
import {
  brokerOpenPgpKeysFromFile,
  loadOrCreateBrokerOpenPgpKeys,
  OPENPGP_KEY_FILE,
  type BrokerOpenPgpKeys,
} from './openpgp-keys.js';

/** When a key came in and, once rotated out, until when it still works. */
export interface KeyTimes {
  created_at?: string;
  /** Signing keys: when it stopped signing (its public part stays published, for verification). */
  retired_at?: string;
  /** Encryption keys: rotated out, no longer published, still decrypts until then. */
  decrypt_until?: string;
  /** Storage keys: when a newer one became current (records under it are being re-wrapped). */
  superseded_at?: string;
}

/**
 * The broker's JOSE keyring as kept (private; on disk mode 0600, in NATS KV sealed
 * under the key-encryption key, see keyring-store.ts).
 *
 * `signing`: newest first; the first is current and holds its private part, the
 * others are retired and kept as public JWKs only (receipts and checkpoints they
 * signed stay verifiable). `encryption`: every key that still decrypts; those
 * without `decrypt_until` are current and published. Version 1 files (no `meta`)
 * read as version 2 with every key current. `storage`: the symmetric keys
 * (oct, A256KW) that wrap each stored notice's own data key (broker/vault/),
 * newest first = current; never published, never in an event.
 */
export interface BrokerKeyFile {
  version: 1 | 2;
  signing: JWK[];
  encryption: JWK[];
  /** Keyrings made before sealing at rest have none until their first start (broker/admin/key-admin.ts ensureStorageKey). */
  storage?: JWK[];
  meta?: Record<string, KeyTimes>;
  /** The broker's OpenPGP private keys (armored, newest first), shared with the JOSE keys so every instance decrypts the same messages. */
  openpgp?: string[];
  /** The registry event of the change that made this version (kept until it is surely logged; see broker/admin). */
  last_event?: {
    id: string;
    jws: string;
    entry: string;
    /** The entry's gateway signature (broker/log/entry-signature.ts); absent on keyrings written before entry signatures. */ entry_signature?: string;
  };
}

export interface BrokerSigningKey {
  kid: string;
  alg: 'EdDSA';
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface BrokerDecryptionKey {
  kid: string;
  crv: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** Set once rotated out: not published, refused after this time. */
  decryptUntil?: number;
}

export interface Jwks {
  keys: JWK[];
  /** The broker's id: the `iss` of receipts and the `aud` of client assertions. */
  broker: string;
  /** The broker's current ASCII-armored OpenPGP public key (encrypt notices to it). */
  openpgp?: string;
}

/** GET /v1/keys/history: every broker key with its times, public parts only. */
export interface KeyHistory {
  broker: string;
  signing: { kid: string; jwk: JWK; created_at?: string; retired_at?: string; current: boolean }[];
  encryption: { kid: string; jwk: JWK; created_at?: string; decrypt_until?: string; current: boolean }[];
}

interface KeyringState {
  file: BrokerKeyFile;
  openpgp: BrokerOpenPgpKeys | undefined;
  signing: BrokerSigningKey;
  verificationKeys: readonly JWK[];
  decryption: ReadonlyMap<string, BrokerDecryptionKey>;
  storage: readonly StorageKey[];
}

/** A storage key's raw bytes from its JWK (oct, 32 bytes); anything else stops the keyring from being taken up. */
function storageKeyOf(jwk: JWK): StorageKey {
  const key = typeof jwk.k === 'string' ? Buffer.from(jwk.k, 'base64url') : Buffer.alloc(0);
  if (jwk.kty !== 'oct' || !jwk.kid || key.length !== 32)
    throw new Error('broker storage key is not a 256-bit oct JWK');
  return { kid: jwk.kid, key: new Uint8Array(key) };
}

async function buildState(file: BrokerKeyFile, previous?: KeyringState): Promise<KeyringState> {
  // OpenPGP keys are parsed only when they changed (parsing is slow, and they rarely do).
  const openpgp =
    file.openpgp === undefined
      ? previous?.openpgp
      : JSON.stringify(file.openpgp) === JSON.stringify(previous?.file.openpgp) && previous?.openpgp
        ? previous.openpgp
        : await brokerOpenPgpKeysFromFile({ version: 1, keys: file.openpgp });
  const [current] = file.signing;
  if (!current?.kid) throw new Error('broker key file has no signing key');
  if (current.d === undefined) throw new Error('the current broker signing key has no private part');
  const signing: BrokerSigningKey = {
    kid: current.kid,
    alg: 'EdDSA',
    privateKey: await importKey(current, 'EdDSA'),
    publicJwk: publicPart(current),
  };
  const decryption = new Map<string, BrokerDecryptionKey>();
  for (const jwk of file.encryption) {
    if (!jwk.kid || !jwk.crv) throw new Error('broker encryption key without kid or crv');
    const until = file.meta?.[jwk.kid]?.decrypt_until;
    decryption.set(jwk.kid, {
      kid: jwk.kid,
      crv: jwk.crv,
      privateKey: await importKey(jwk, 'ECDH-ES'),
      publicJwk: publicPart(jwk),
      ...(until ? { decryptUntil: Date.parse(until) } : {}),
    });
  }
  const storage = (file.storage ?? []).map(storageKeyOf);
  return { file, openpgp, signing, verificationKeys: file.signing.map(publicPart), decryption, storage };
}

/**
 * The broker's own keys: one current signing key (older ones still published
 * for verification) and its decryption keys, selected by kid. Live: `replace`
 * swaps in a rotated keyring at once, and every reader (ingest, receipts,
 * checkpoints, webhooks, GET /v1/keys) sees the new keys on its next use.
 */
export class BrokerKeyring {
  #s: KeyringState;

  private constructor(
    readonly brokerId: string,
    state: KeyringState,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.#s = state;
  }

  static async fromFile(brokerId: string, file: BrokerKeyFile, now?: () => Date): Promise<BrokerKeyring> {
    return new BrokerKeyring(brokerId, await buildState(file), now);
  }

  /** Take up another version of the keyring; keys are imported before the swap, so a bad file changes nothing. */
  async replace(file: BrokerKeyFile): Promise<void> {
    this.#s = await buildState(file, this.#s);
  }

  /** The broker's OpenPGP keys (parsed and decrypted once per change), when it has them. */
  get openpgp(): BrokerOpenPgpKeys | undefined {
    return this.#s.openpgp;
  }

  /** The keyring as kept (with private parts): for the keyring store only. */
  get file(): BrokerKeyFile {
    return this.#s.file;
  }

  get signing(): BrokerSigningKey {
    return this.#s.signing;
  }

  /** Every signing key's public JWK, current first: the key history receipts and checkpoints verify against. */
  get verificationKeys(): readonly JWK[] {
    return this.#s.verificationKeys;
  }

  /** The storage key new notices' data keys are wrapped under (the newest); undefined on a keyring from before sealing. */
  get storageKey(): StorageKey | undefined {
    return this.#s.storage[0];
  }

  /** A storage key by kid, current or superseded (records under it are still being re-wrapped). */
  storageKeyById(kid: string): StorageKey | undefined {
    return this.#s.storage.find((k) => k.kid === kid);
  }

  /** A decryption key by kid; a rotated-out key only until its grace period ends. */
  decryptionKey(kid: string): BrokerDecryptionKey | undefined {
    const k = this.#s.decryption.get(kid);
    if (k?.decryptUntil !== undefined && k.decryptUntil < this.now().getTime()) return undefined;
    return k;
  }

  /** The public JWKS served at GET /v1/keys: every signing key, and the current encryption keys. */
  jwks(): Jwks {
    const current = [...this.#s.decryption.values()]
      .filter((k) => k.decryptUntil === undefined)
      .map((k) => k.publicJwk);
    const jwks: Jwks = { keys: [...this.#s.verificationKeys, ...current], broker: this.brokerId };
    if (this.#s.openpgp) jwks.openpgp = this.#s.openpgp.publicArmored;
    return jwks;
  }

  history(): KeyHistory {
    const { file } = this.#s;
    const meta = (kid: string | undefined) => (kid ? file.meta?.[kid] : undefined) ?? {};
    return {
      broker: this.brokerId,
      signing: file.signing.map((k, i) => ({
        kid: String(k.kid),
        jwk: publicPart(k),
        current: i === 0,
        ...pick(meta(k.kid), ['created_at', 'retired_at']),
      })),
      encryption: file.encryption.map((k) => ({
        kid: String(k.kid),
        jwk: publicPart(k),
        current: meta(k.kid).decrypt_until === undefined,
        ...pick(meta(k.kid), ['created_at', 'decrypt_until']),
      })),
    };
  }
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

export async function generateBrokerKeyFile(now = new Date()): Promise<BrokerKeyFile> {
  const sig = await makeKeyPair('Ed25519');
  const p256 = await makeKeyPair('P-256-ECDH');
  const x25519 = await makeKeyPair('X25519');
  const created_at = now.toISOString();
  const storage = makeStorageKey();
  return {
    version: 2,
    signing: [sig.privateJwk],
    encryption: [p256.privateJwk, x25519.privateJwk],
    storage: [storage],
    meta: {
      [sig.kid]: { created_at },
      [p256.kid]: { created_at },
      [x25519.kid]: { created_at },
      [String(storage.kid)]: { created_at },
    },
  };
}

/** A new storage key: 256 random bits; its kid is random too (a thumbprint of a secret key would be a hash of it). */
export function makeStorageKey(): JWK {
  return {
    kty: 'oct',
    kid: `storage-${randomBytes(8).toString('hex')}`,
    alg: 'A256KW',
    k: randomBytes(32).toString('base64url'),
  };
}

/** The storage keys of a keyring file, for a reader with no live keyring (the audit export). */
export function storageKeysOf(file: Pick<BrokerKeyFile, 'storage'>): {
  storageKey: StorageKey | undefined;
  storageKeyById(kid: string): StorageKey | undefined;
} {
  const keys = (file.storage ?? []).map(storageKeyOf);
  return { storageKey: keys[0], storageKeyById: (kid) => keys.find((k) => k.kid === kid) };
}

export interface StorageRotation {
  file: BrokerKeyFile;
  /** The new key's kid (its bytes never leave the keyring). */
  added: string;
  /** The key that was current until now, if any: records under it get re-wrapped. */
  superseded?: string;
}

/** Make a new storage key current; older ones stay (data keys under them still unwrap) until dropStorageKeys. */
export function rotateStorageKey(file: BrokerKeyFile, now: Date): StorageRotation {
  const key = makeStorageKey();
  const kid = String(key.kid);
  const at = now.toISOString();
  const [current] = file.storage ?? [];
  const meta: Record<string, KeyTimes> = { ...(file.meta ?? {}), [kid]: { created_at: at } };
  if (current?.kid) meta[current.kid] = { ...(meta[current.kid] ?? {}), superseded_at: at };
  return {
    file: { ...file, version: 2, storage: [key, ...(file.storage ?? [])], meta },
    added: kid,
    ...(current?.kid ? { superseded: current.kid } : {}),
  };
}

/** Drop storage keys (never the current one): no record is wrapped under them any more. */
export function dropStorageKeys(file: BrokerKeyFile, kids: readonly string[]): BrokerKeyFile {
  const [current, ...older] = file.storage ?? [];
  if (!current) return file;
  const meta = { ...(file.meta ?? {}) };
  for (const kid of kids) delete meta[kid];
  return { ...file, storage: [current, ...older.filter((k) => !kids.includes(String(k.kid)))], meta };
}

export interface EncryptionRotation {
  file: BrokerKeyFile;
  /** The new keys' public JWKs (one P-256, one X25519). */
  added: JWK[];
  /** The keys rotated out, with the end of their grace period. */
  retired: { kid: string; decrypt_until: string }[];
  /** Keys whose grace period had ended: their private parts are gone from the keyring. */
  dropped: string[];
}

/**
 * Rotate the encryption keys: a new P-256 and X25519 pair becomes current; the
 * current ones keep decrypting for `graceSeconds` (not published any more);
 * keys whose grace period has already ended are dropped. Pure but for key
 * generation.
 */
export async function rotateEncryptionKeys(
  file: BrokerKeyFile,
  now: Date,
  graceSeconds: number,
): Promise<EncryptionRotation> {
  const meta: Record<string, KeyTimes> = { ...(file.meta ?? {}) };
  const until = new Date(now.getTime() + graceSeconds * 1000).toISOString();
  const retired: EncryptionRotation['retired'] = [];
  const dropped: string[] = [];
  const kept: JWK[] = [];
  for (const k of file.encryption) {
    const kid = String(k.kid);
    const m = meta[kid] ?? {};
    if (m.decrypt_until !== undefined) {
      if (Date.parse(m.decrypt_until) < now.getTime()) {
        dropped.push(kid);
        delete meta[kid];
        continue;
      }
    } else {
      meta[kid] = { ...m, decrypt_until: until };
      retired.push({ kid, decrypt_until: until });
    }
    kept.push(k);
  }
  const p256 = await makeKeyPair('P-256-ECDH');
  const x25519 = await makeKeyPair('X25519');
  const created_at = now.toISOString();
  meta[p256.kid] = { created_at };
  meta[x25519.kid] = { created_at };
  return {
    // Spread first: what the rotation does not touch (storage and OpenPGP keys) stays as it is.
    file: { ...file, version: 2, encryption: [p256.privateJwk, x25519.privateJwk, ...kept], meta },
    added: [p256.publicJwk, x25519.publicJwk],
    retired,
    dropped,
  };
}

export interface SigningRotation {
  file: BrokerKeyFile;
  added: JWK;
  retired: { kid: string; retired_at: string };
}

/** Rotate the signing key: a new Ed25519 key signs from now on; the old one's private part is dropped, its public part stays in the history. */
export async function rotateSigningKey(file: BrokerKeyFile, now: Date): Promise<SigningRotation> {
  const [current, ...older] = file.signing;
  if (!current?.kid) throw new Error('broker key file has no signing key');
  const sig = await makeKeyPair('Ed25519');
  const at = now.toISOString();
  const meta: Record<string, KeyTimes> = {
    ...(file.meta ?? {}),
    [sig.kid]: { created_at: at },
    [current.kid]: { ...(file.meta?.[current.kid] ?? {}), retired_at: at },
  };
  return {
    file: { ...file, version: 2, signing: [sig.privateJwk, publicPart(current), ...older.map(publicPart)], meta },
    added: sig.publicJwk,
    retired: { kid: current.kid, retired_at: at },
  };
}

export const brokerKeyFilePath = (dataDir: string) => join(dataDir, 'broker', 'keys.json');

/** Write a file of private keys atomically, mode 0600. */
export function writeSecretJson(path: string, file: unknown): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(file, null, 2), { mode: 0o600 });
  renameSync(tmp, path);
}

export function readBrokerKeyFile(path: string): BrokerKeyFile {
  chmodSync(path, 0o600);
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as BrokerKeyFile;
  if (
    (parsed.version !== 1 && parsed.version !== 2) ||
    !Array.isArray(parsed.signing) ||
    !Array.isArray(parsed.encryption)
  )
    throw new Error(`${path}: not a broker key file`);
  return parsed;
}

/** Load dataDir/broker/keys.json, creating it (0600) on first start. */
export async function loadOrCreateBrokerKeys(
  dataDir: string,
  brokerId: string,
  now?: () => Date,
): Promise<{ keyring: BrokerKeyring; created: boolean }> {
  const file = brokerKeyFilePath(dataDir);
  let created = false;
  if (!existsSync(file)) {
    writeSecretJson(file, await generateBrokerKeyFile());
    created = true;
  }
  const parsed = readBrokerKeyFile(file);
  // The OpenPGP keys live in dataDir/broker/openpgp-keys.json (0600), and travel with the JOSE keys in the shared keyring.
  if (parsed.openpgp === undefined) {
    await loadOrCreateBrokerOpenPgpKeys(dataDir, brokerId);
    parsed.openpgp = (JSON.parse(readFileSync(join(dataDir, ...OPENPGP_KEY_FILE), 'utf8')) as { keys: string[] }).keys;
  }
  return { keyring: await BrokerKeyring.fromFile(brokerId, parsed, now), created };
}
