import { keyStateAt, type Agency } from '../../broker/registry/model.js';
import { encryptionKeyIdsAt, keyIdsOf } from './encryption-key-ids.js';

type Owner = { agency: string; kid: string };

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
): Promise<Owner | undefined> {
  return (await encryptionKeyOwners(agencies, [keyId], at))[0];
}

/**
 * The owner of each of `keyIds` (encryptionKeyOwner), in order; undefined for
 * an id no single active record holds as a current encryption key. Each
 * active record's certificate is resolved once (encryption-key-ids.ts), not
 * once per id: a body may name up to 1,000 keys.
 */
export async function encryptionKeyOwners(
  agencies: readonly Agency[],
  keyIds: readonly string[],
  at: Date,
): Promise<(Owner | undefined)[]> {
  const wanted = new Set(keyIds);
  const claims = new Map<string, Owner[]>();
  for (const agency of agencies)
    for (const record of agency.openpgp_keys ?? []) {
      if (keyStateAt(record, at) !== 'active') continue;
      for (const id of await encryptionKeyIdsAt(record, at)) {
        if (!wanted.has(id)) continue;
        const owners = claims.get(id) ?? [];
        owners.push({ agency: agency.id, kid: record.kid });
        claims.set(id, owners);
      }
    }
  return keyIds.map((id) => {
    const owners = claims.get(id);
    return owners?.length === 1 ? owners[0] : undefined;
  });
}

/** The kid of the agency's first active record whose certificate holds one of `keyIds`; undefined when none does. */
export async function recordHoldingAny(
  agency: Agency,
  keyIds: readonly string[],
  at: Date,
): Promise<string | undefined> {
  for (const record of agency.openpgp_keys ?? []) {
    if (keyStateAt(record, at) !== 'active') continue;
    if ((await keyIdsOf(record)).some((id) => keyIds.includes(id))) return record.kid;
  }
  return undefined;
}
