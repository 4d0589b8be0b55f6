import { readKey, type PublicKey } from 'openpgp';
import { keyStateAt, type Agency, type OpenPgpAgencyKey } from '../../broker/registry/model.js';

/** Parsed certificates kept, least recently used dropped first: a few per OpenPGP recipient agency. */
export const RECIPIENT_CACHE_MAX = 64;
const parsed = new Map<string, Promise<PublicKey | undefined>>();

/**
 * A registry record's certificate, parsed: public, and its fingerprint is the
 * record's kid; else undefined. Cached by (kid, armored text), so the router
 * does not re-parse a certificate on every delivery; any change to the record's
 * certificate is another key, and everything that depends on the time (registry
 * window, revocation, expiry, a valid encryption subkey) is checked on every call.
 */
function parseRecipient(record: OpenPgpAgencyKey): Promise<PublicKey | undefined> {
  const id = `${record.kid}\n${record.armored}`;
  let p = parsed.get(id);
  if (p) {
    parsed.delete(id); // most recently used last
  } else {
    p = readKey({ armoredKey: record.armored }).then(
      (key) => (key.isPrivate() || key.getFingerprint().toUpperCase() !== record.kid ? undefined : key),
      () => undefined,
    );
    if (parsed.size >= RECIPIENT_CACHE_MAX) parsed.delete(parsed.keys().next().value as string);
  }
  parsed.set(id, p);
  return p;
}

/**
 * The OpenPGP certificate an OpenPGP delivery to `agency` is encrypted to, at `at`:
 * among its active `openpgp_keys`, records with use `enc` first, then `sig`
 * certificates (GnuPG certificates carry an encryption subkey), the last listed
 * first; the certificate must match its kid, be neither revoked nor expired, and
 * have a valid encryption (sub)key now. Undefined when there is none.
 */
export async function currentOpenPgpRecipient(
  agency: Agency,
  at: Date,
): Promise<{ kid: string; key: PublicKey } | undefined> {
  const records = (agency.openpgp_keys ?? []).filter((r) => keyStateAt(r, at) === 'active');
  const ordered = [
    ...records.filter((r) => r.use === 'enc').reverse(),
    ...records.filter((r) => r.use === 'sig').reverse(),
  ];
  for (const record of ordered) {
    const key = await parseRecipient(record);
    if (!key) continue;
    try {
      await key.getEncryptionKey(undefined, at);
      return { kid: record.kid, key };
    } catch {
      continue;
    }
  }
  return undefined;
}
