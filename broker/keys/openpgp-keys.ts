import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateKey, readPrivateKey, type PrivateKey } from 'openpgp';

/**
 * The broker's OpenPGP keys: kept beside the JOSE keys in dataDir/broker/openpgp-keys.json
 * (mode 0600), newest first. The first is published at GET /v1/keys (`openpgp`);
 * all are accepted for decryption, so a rotation does not break messages in flight.
 *
 * Keys are v4 `ecc` keys on curve25519Legacy (EdDSALegacy primary, ECDH cv25519
 * subkey), which GnuPG 2.2 reads; RFC 9580 v6 keys (`type: 'curve25519'`) it cannot.
 * They are stored unprotected (like the JOSE private JWKs next to them: the file
 * mode is the protection) and parsed once, at start.
 */
export interface BrokerOpenPgpKeyFile {
  version: 1;
  /** ASCII-armored private keys, newest first. */
  keys: string[];
}

export interface BrokerOpenPgpKeys {
  /** Upper-case hex v4 fingerprint of the current (published) key. */
  fingerprint: string;
  /** The current key's armored public key, as published. */
  publicArmored: string;
  /** Every key accepted for decryption, decrypted once at start. */
  decryptionKeys: readonly PrivateKey[];
}

export const OPENPGP_KEY_FILE = ['broker', 'openpgp-keys.json'] as const;

export async function generateBrokerOpenPgpKey(brokerId: string): Promise<string> {
  const { privateKey } = await generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: `Liaison broker ${brokerId}` }],
    format: 'armored',
  });
  return privateKey;
}

export async function brokerOpenPgpKeysFromFile(file: BrokerOpenPgpKeyFile): Promise<BrokerOpenPgpKeys> {
  if (file.version !== 1 || !Array.isArray(file.keys) || file.keys.length === 0)
    throw new Error('broker OpenPGP key file has no key');
  const keys: PrivateKey[] = [];
  for (const armored of file.keys) {
    const key = await readPrivateKey({ armoredKey: armored });
    if (!key.isDecrypted())
      throw new Error('broker OpenPGP key is passphrase-protected; store it unprotected (the file is 0600)');
    keys.push(key);
  }
  const current = keys[0] as PrivateKey;
  return {
    fingerprint: current.getFingerprint().toUpperCase(),
    publicArmored: current.toPublic().armor(),
    decryptionKeys: keys,
  };
}

/** Load dataDir/broker/openpgp-keys.json, creating it (0600) on first start. */
export async function loadOrCreateBrokerOpenPgpKeys(
  dataDir: string,
  brokerId: string,
): Promise<{ keys: BrokerOpenPgpKeys; created: boolean }> {
  const file = join(dataDir, ...OPENPGP_KEY_FILE);
  let created = false;
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    const content: BrokerOpenPgpKeyFile = { version: 1, keys: [await generateBrokerOpenPgpKey(brokerId)] };
    writeFileSync(tmp, JSON.stringify(content, null, 2), { mode: 0o600 });
    renameSync(tmp, file);
    created = true;
  }
  chmodSync(file, 0o600);
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as BrokerOpenPgpKeyFile;
  return { keys: await brokerOpenPgpKeysFromFile(parsed), created };
}
