import { generateKey, readKey } from 'openpgp';
import type { OpenPgpAgencyKey } from '../registry/model.js';

/**
 * An agency OpenPGP key as GnuPG 2.2 makes them by default (v4, Ed25519 primary
 * for signing, cv25519 subkey for encryption): the private key (armored,
 * unprotected: for demo credentials files, 0600) and its registry record
 * (fingerprint as kid, public key block only).
 */
export async function makeOpenPgpAgencyKey(
  name: string,
  email: string,
): Promise<{ privateArmored: string; record: OpenPgpAgencyKey }> {
  const { privateKey, publicKey } = await generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name, email }],
    format: 'armored',
  });
  const fingerprint = (await readKey({ armoredKey: publicKey })).getFingerprint().toUpperCase();
  return {
    privateArmored: privateKey,
    record: { kid: fingerprint, use: 'sig', format: 'openpgp', armored: publicKey, status: 'active' },
  };
}
