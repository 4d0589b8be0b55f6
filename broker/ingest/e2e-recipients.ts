import { LiaisonError } from '../core/errors.js';
import { encryptionKeysAt, keyStateAt, type Agency, type RegistrySnapshot } from '../registry/model.js';

const mismatch = (publicDetail: string) => new LiaisonError('recipients-mismatch', { publicDetail });

/**
 * The agency whose current encryption key of the envelope's format `kid` is,
 * and whether it is current: a JWK kid for jose-e2e; for openpgp-e2e an
 * OpenPGP certificate's kid (its opener has already checked that the
 * session key's (sub)key is a valid encryption key of that certificate now).
 */
function ownerOf(
  kid: string,
  registry: RegistrySnapshot,
  at: Date,
  format: string,
): { agency: Agency; current: boolean } | undefined {
  if (format === 'openpgp-e2e') {
    const agency = registry.agencies().find((a) => (a.openpgp_keys ?? []).some((k) => k.kid === kid));
    const record = agency?.openpgp_keys?.find((k) => k.kid === kid);
    return agency && { agency, current: record !== undefined && keyStateAt(record, at) === 'active' };
  }
  const found = registry.key(kid);
  return found && { agency: found.agency, current: encryptionKeysAt(found.agency.keys, at).some((k) => k.kid === kid) };
}

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
  format = 'jose-e2e',
): void {
  const covered = new Set<string>();
  for (const kid of kids) {
    const found = ownerOf(kid, registry, at, format);
    const agency = found?.agency.id;
    if (agency === undefined || !recipients.includes(agency))
      throw mismatch(`kid ${kid} is not an encryption key of a recipient of this notice`);
    if (!found!.current) throw mismatch(`kid ${kid} is not a current encryption key of ${agency}`);
    if (covered.has(agency)) throw mismatch(`${agency} has more than one entry`);
    covered.add(agency);
  }
  const missing = recipients.filter((r) => !covered.has(r));
  if (missing.length > 0) throw mismatch(`no entry for the recipient(s) ${missing.join(', ')}`);
}
