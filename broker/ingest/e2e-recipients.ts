import { LiaisonError } from '../core/errors.js';
import { encryptionKeysAt, type RegistrySnapshot } from '../registry/model.js';

const mismatch = (publicDetail: string) => new LiaisonError('recipients-mismatch', { publicDetail });

/**
 * End-to-end notices, after the sharing rules: the body is sealed exactly
 * once for each recipient (the agencies the addressees expand to), each
 * entry to a current encryption key of that recipient, and for nobody else
 * (not the hub, not the origin, not a member left out). Pure.
 */
export function checkSealedFor(
  recipients: readonly string[],
  kids: readonly string[],
  registry: RegistrySnapshot,
  at: Date,
): void {
  const covered = new Set<string>();
  for (const kid of kids) {
    const found = registry.key(kid);
    const agency = found?.agency.id;
    if (agency === undefined || !recipients.includes(agency))
      throw mismatch(`kid ${kid} is not an encryption key of a recipient of this notice`);
    if (!encryptionKeysAt(found!.agency.keys, at).some((k) => k.kid === kid))
      throw mismatch(`kid ${kid} is not a current encryption key of ${agency}`);
    if (covered.has(agency)) throw mismatch(`${agency} has more than one entry`);
    covered.add(agency);
  }
  const missing = recipients.filter((r) => !covered.has(r));
  if (missing.length > 0) throw mismatch(`no entry for the recipient(s) ${missing.join(', ')}`);
}
