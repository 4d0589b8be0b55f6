import { readKey, type PublicKey } from 'openpgp';
import { keyStateAt, type Agency } from '../registry/model.js';

/**
 * The OpenPGP certificate an OpenPGP delivery to `agency` is encrypted to, at `at`:
 * among its active `openpgp_keys`, records with use `enc` first, then `sig`
 * certificates (GnuPG certificates carry an encryption subkey), the last listed
 * first; the certificate must match its kid, be neither revoked nor expired, and
 * have a valid encryption (sub)key now. Undefined when there is none.
 */
export async function currentOpenPgpRecipient(agency: Agency, at: Date): Promise<{ kid: string; key: PublicKey } | undefined> {
  const records = (agency.openpgp_keys ?? []).filter((r) => keyStateAt(r, at) === 'active');
  const ordered = [...records.filter((r) => r.use === 'enc').reverse(), ...records.filter((r) => r.use === 'sig').reverse()];
  for (const record of ordered) {
    try {
      const key = (await readKey({ armoredKey: record.armored })) as PublicKey;
      if (key.isPrivate() || key.getFingerprint().toUpperCase() !== record.kid) continue;
      await key.getEncryptionKey(undefined, at);
      return { kid: record.kid, key };
    } catch {
      continue;
    }
  }
  return undefined;
}
