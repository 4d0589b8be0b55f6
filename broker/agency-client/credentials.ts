import type { JWK } from 'jose';

/** An agency's private credentials, as `liaison keys generate` writes them (and the demo network keeps them). */
export interface AgencyCredentials {
  agency: string;
  country: string;
  signing: JWK;
  encryption: JWK;
  /** The agency's OpenPGP key (Ed25519 + cv25519, as GnuPG makes them), for agencies that use OpenPGP. */
  openpgp?: { fingerprint: string; private_armored: string };
}
