import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CryptoKey, JWK } from 'jose';
import { importKey, makeKeyPair, publicPart } from './jwk.js';
import { loadOrCreateBrokerOpenPgpKeys, type BrokerOpenPgpKeys } from './openpgp-keys.js';

/** What is kept on disk (private, mode 0600). */
export interface BrokerKeyFile {
  version: 1;
  signing: JWK[]; // newest first; the first is current
  encryption: JWK[]; // all accepted for decryption; publish those with status active
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
}

export interface Jwks {
  keys: JWK[];
  /** The broker's id: the `iss` of receipts and the `aud` of client assertions. */
  broker: string;
  /** The broker's current ASCII-armored OpenPGP public key (encrypt notices to it). */
  openpgp?: string;
}

/** The broker's own keys: one current signing key (plus older ones still published for verification) and its decryption keys, selected by kid. */
export class BrokerKeyring {
  private constructor(
    readonly brokerId: string,
    readonly signing: BrokerSigningKey,
    readonly verificationKeys: readonly JWK[],
    private readonly decryption: ReadonlyMap<string, BrokerDecryptionKey>,
    /** The broker's OpenPGP keys (decrypted once at start), when loaded. */
    readonly openpgp?: BrokerOpenPgpKeys,
  ) {}

  static async fromFile(brokerId: string, file: BrokerKeyFile, openpgp?: BrokerOpenPgpKeys): Promise<BrokerKeyring> {
    const [current] = file.signing;
    if (!current?.kid) throw new Error('broker key file has no signing key');
    const signing: BrokerSigningKey = { kid: current.kid, alg: 'EdDSA', privateKey: await importKey(current, 'EdDSA'), publicJwk: publicPart(current) };
    const dec = new Map<string, BrokerDecryptionKey>();
    for (const jwk of file.encryption) {
      if (!jwk.kid || !jwk.crv) throw new Error('broker encryption key without kid or crv');
      dec.set(jwk.kid, { kid: jwk.kid, crv: jwk.crv, privateKey: await importKey(jwk, 'ECDH-ES'), publicJwk: publicPart(jwk) });
    }
    return new BrokerKeyring(brokerId, signing, file.signing.map(publicPart), dec, openpgp);
  }

  decryptionKey(kid: string): BrokerDecryptionKey | undefined {
    return this.decryption.get(kid);
  }

  /** The public JWKS served at GET /v1/keys. */
  jwks(): Jwks {
    const jwks: Jwks = { keys: [...this.verificationKeys, ...[...this.decryption.values()].map((k) => k.publicJwk)], broker: this.brokerId };
    if (this.openpgp) jwks.openpgp = this.openpgp.publicArmored;
    return jwks;
  }
}

export async function generateBrokerKeyFile(): Promise<BrokerKeyFile> {
  const sig = await makeKeyPair('Ed25519');
  const p256 = await makeKeyPair('P-256-ECDH');
  const x25519 = await makeKeyPair('X25519');
  return { version: 1, signing: [sig.privateJwk], encryption: [p256.privateJwk, x25519.privateJwk] };
}

/** Load dataDir/broker/keys.json, creating it (0600) on first start. */
export async function loadOrCreateBrokerKeys(dataDir: string, brokerId: string): Promise<{ keyring: BrokerKeyring; created: boolean }> {
  const file = join(dataDir, 'broker', 'keys.json');
  let created = false;
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(await generateBrokerKeyFile(), null, 2), { mode: 0o600 });
    renameSync(tmp, file);
    created = true;
  }
  chmodSync(file, 0o600);
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as BrokerKeyFile;
  // The OpenPGP key lives beside the JOSE keys (dataDir/broker/openpgp-keys.json, 0600).
  const { keys: openpgp } = await loadOrCreateBrokerOpenPgpKeys(dataDir, brokerId);
  return { keyring: await BrokerKeyring.fromFile(brokerId, parsed, openpgp), created };
}
