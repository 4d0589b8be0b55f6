import { readKey, type PublicKey } from 'openpgp';
import { LiaisonError } from '../../broker/core/errors.js';
import { keyStateAt, type Agency, type OpenPgpAgencyKey, type RegistrySnapshot } from '../../broker/registry/model.js';

/** A registered OpenPGP signing certificate, checked for the request's time. */
export interface OpenPgpSigner {
  /** The certificate's primary fingerprint (upper-case hex): the registry kid. */
  kid: string;
  agencyId: string;
  key: PublicKey;
}

/** What a signature says about its issuer (RFC 9580 5.2.3.12 and 5.2.3.35). */
export interface OpenPgpIssuer {
  /** 16 hex digits, any case. */
  keyID: string;
  /** Issuer fingerprint subpacket, hex, when present (GnuPG 2.2 and openpgp.js both add it). */
  fingerprint?: string;
}

export type OpenPgpSignerResolver = (issuer: OpenPgpIssuer) => Promise<OpenPgpSigner>;

interface Indexed {
  agency: Agency;
  record: OpenPgpAgencyKey;
  key: PublicKey;
}

/** Parse one registered certificate: public only, v4, and its fingerprint must be the record's kid. */
async function parseCertificate(record: OpenPgpAgencyKey): Promise<PublicKey | undefined> {
  try {
    const key = await readKey({ armoredKey: record.armored });
    if (key.isPrivate() || key.keyPacket.version !== 4 || key.getFingerprint().toUpperCase() !== record.kid)
      return undefined;
    return key;
  } catch {
    return undefined;
  }
}

/**
 * Resolves the issuer of an OpenPGP signature against the live registry's
 * `openpgp_keys` with use `sig`: by issuer fingerprint when the signature has
 * one, else by key id; the primary key and its subkeys all point to their
 * certificate. Then, at `now`:
 *  - the registry record must be active (status, not_before, not_after)  → else key-revoked;
 *  - the certificate itself must not be revoked or expired, and the issuing
 *    (sub)key must be a valid signing key (its own expiry, revocation, flags) → else key-revoked.
 * An id claimed by two certificates names none (key-unknown), as for JWK kids.
 * Certificates are parsed once per registry snapshot (reused across snapshots
 * when unchanged), so a revocation in the registry is seen at once.
 */
export function createOpenPgpSignerResolver(
  snapshot: () => RegistrySnapshot,
  now: () => Date = () => new Date(),
): OpenPgpSignerResolver {
  let indexedFor: RegistrySnapshot | undefined;
  let index: Promise<Map<string, Indexed | null>> = Promise.resolve(new Map<string, Indexed | null>());
  let parsed = new Map<string, Promise<PublicKey | undefined>>();

  const build = async (snap: RegistrySnapshot) => {
    const next = new Map<string, Promise<PublicKey | undefined>>();
    const byId = new Map<string, Indexed | null>();
    // Each id is claimed once per certificate; a second claim (another record, maybe another agency) makes it ambiguous.
    const claim = (id: string, entry: Indexed) => byId.set(id, byId.has(id) ? null : entry);
    for (const agency of snap.agencies()) {
      for (const record of agency.openpgp_keys ?? []) {
        if (record.use !== 'sig') continue;
        const p = parsed.get(record.armored) ?? parseCertificate(record);
        next.set(record.armored, p);
        const key = await p;
        if (!key) continue;
        const entry = { agency, record, key };
        claim(`fpr:${key.getFingerprint().toUpperCase()}`, entry);
        for (const sub of key.subkeys) claim(`fpr:${sub.getFingerprint().toUpperCase()}`, entry);
        for (const id of key.getKeyIDs()) claim(`kid:${id.toHex().toUpperCase()}`, entry);
      }
    }
    parsed = next;
    return byId;
  };

  return async function resolveOpenPgpSigner(issuer) {
    const snap = snapshot();
    if (snap !== indexedFor) {
      indexedFor = snap;
      index = build(snap);
    }
    const byId = await index;
    const lookup = issuer.fingerprint ? `fpr:${issuer.fingerprint.toUpperCase()}` : `kid:${issuer.keyID.toUpperCase()}`;
    const found = byId.get(lookup);
    if (!found)
      throw new LiaisonError('key-unknown', {
        publicDetail: 'the signing key is not a registered agency OpenPGP signing key',
        detail: `OpenPGP issuer ${lookup} not registered${found === null ? ' (ambiguous)' : ''}`,
      });
    const at = now();
    const state = keyStateAt(found.record, at);
    if (state !== 'active')
      throw new LiaisonError('key-revoked', {
        detail: `OpenPGP signer key ${found.record.kid} is ${state} in the registry`,
      });
    const { key } = found;
    if (await key.isRevoked(undefined, undefined, at))
      throw new LiaisonError('key-revoked', { detail: `OpenPGP certificate ${found.record.kid} carries a revocation` });
    let expires: Date | number | null;
    try {
      expires = await key.getExpirationTime();
    } catch (e) {
      throw new LiaisonError('key-revoked', {
        detail: `OpenPGP certificate ${found.record.kid} has no valid self-signature`,
        cause: e,
      });
    }
    if (expires === null || (expires instanceof Date && expires.getTime() <= at.getTime()))
      throw new LiaisonError('key-revoked', { detail: `OpenPGP certificate ${found.record.kid} is expired` });
    const signingKeyID = key.getKeyIDs().find((id) => id.toHex().toUpperCase() === issuer.keyID.toUpperCase());
    try {
      await key.getSigningKey(signingKeyID, at);
    } catch (e) {
      throw new LiaisonError('key-revoked', {
        detail: `OpenPGP certificate ${found.record.kid}: the issuing key is not a valid signing key now`,
        cause: e,
      });
    }
    return { kid: found.record.kid, agencyId: found.agency.id, key };
  };
}
