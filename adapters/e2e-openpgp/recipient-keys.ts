import { readKey, type PublicKey } from 'openpgp';
import { keyStateAt, type Agency, type OpenPgpAgencyKey } from '../../broker/registry/model.js';

/** Parsed certificates kept, least recently used dropped first. */
const CACHE_MAX = 256;
const parsed = new Map<string, Promise<PublicKey | undefined>>();

/** A registry record's certificate, parsed: public, v4, fingerprint = kid; else undefined. Cached by (kid, armored). */
function certificateOf(record: OpenPgpAgencyKey): Promise<PublicKey | undefined> {
  const id = `${record.kid}\n${record.armored}`;
  let p = parsed.get(id);
  if (p) parsed.delete(id);
  else {
    p = readKey({ armoredKey: record.armored }).then(
      (key) =>
        key.isPrivate() || key.keyPacket.version !== 4 || key.getFingerprint().toUpperCase() !== record.kid
          ? undefined
          : key,
      () => undefined,
    );
    if (parsed.size >= CACHE_MAX) parsed.delete(parsed.keys().next().value as string);
  }
  parsed.set(id, p);
  return p;
}

/**
 * The registry record whose certificate holds the (sub)key `keyId` (16 hex
 * digits, upper case) as an encryption key valid at `at`: record active
 * (status, window), certificate neither revoked nor expired, the (sub)key
 * encryption-capable and valid now (openpgp.js getEncryptionKey). Undefined
 * when no record, or more than one, does: an id two certificates claim names none.
 */
export async function encryptionKeyOwner(
  agencies: readonly Agency[],
  keyId: string,
  at: Date,
): Promise<{ agency: string; kid: string } | undefined> {
  const found: { agency: string; kid: string }[] = [];
  for (const agency of agencies) {
    for (const record of agency.openpgp_keys ?? []) {
      if (keyStateAt(record, at) !== 'active') continue;
      const key = await certificateOf(record);
      const id = key?.getKeyIDs().find((k) => k.toHex().toUpperCase() === keyId);
      if (!key || !id) continue;
      try {
        await key.getEncryptionKey(id, at);
      } catch {
        continue;
      }
      found.push({ agency: agency.id, kid: record.kid });
    }
  }
  return found.length === 1 ? found[0] : undefined;
}

/**
 * The owner of each of `keyIds` (encryptionKeyOwner), in order; undefined for
 * an id no single active record holds as a current encryption key.
 */
export async function encryptionKeyOwners(
  agencies: readonly Agency[],
  keyIds: readonly string[],
  at: Date,
): Promise<({ agency: string; kid: string } | undefined)[]> {
  const owners: ({ agency: string; kid: string } | undefined)[] = [];
  for (const id of keyIds) owners.push(await encryptionKeyOwner(agencies, id, at));
  return owners;
}

/** The kid of the agency's first active record whose certificate holds one of `keyIds`; undefined when none does. */
export async function recordHoldingAny(
  agency: Agency,
  keyIds: readonly string[],
  at: Date,
): Promise<string | undefined> {
  for (const record of agency.openpgp_keys ?? []) {
    if (keyStateAt(record, at) !== 'active') continue;
    const key = await certificateOf(record);
    if (key?.getKeyIDs().some((k) => keyIds.includes(k.toHex().toUpperCase()))) return record.kid;
  }
  return undefined;
}
