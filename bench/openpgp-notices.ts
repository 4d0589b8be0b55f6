import { createMessage, encrypt, readKey, readPrivateKey, type PrivateKey } from 'openpgp';
import { credentialsPath, readCredentials } from '../broker/demo/demo-network.js';
import { makeNotice, SIZES, type BenchEnvelope } from './notices.js';

/** Media type of an OpenPGP envelope (POST /v1/notices). */
export const PGP_MEDIA_TYPE = 'application/pgp-encrypted';

/**
 * The OpenPGP mix: the demo agencies with an OpenPGP key (Ed25519/cv25519 v4
 * keys, as GnuPG 2.2 makes them by default), each sending notices its
 * operations allow. fr-douane and iq-police send their docs/examples notices as
 * they are; gb-border-force (no sample of its own) sends a seizure report in
 * AIRCOP and a modus operandi to all of the OIC channel.
 */
export const OPENPGP_MIX: readonly { type: string; from: string; patch?: Record<string, unknown> }[] = [
  { type: 'document-fraud-alert', from: 'fr-douane' }, // oic-channel → GB, IQ, VN
  { type: 'person-alert', from: 'iq-police' }, // oic-channel → gb-border-force, fr-douane
  {
    type: 'seizure-report',
    from: 'gb-border-force',
    patch: {
      operation: 'aircop',
      origin: { country: 'GB', agency: 'gb-border-force' },
      addressees: ['th-customs', 'fr-douane', 'vn-customs'],
      tlp: 'AMBER',
    },
  },
  {
    type: 'modus-operandi',
    from: 'gb-border-force',
    patch: {
      operation: 'oic-channel',
      origin: { country: 'GB', agency: 'gb-border-force' },
      addressees: ['*'],
      tlp: 'GREEN',
    },
  },
];

/**
 * Sign (the agency's demo OpenPGP key) and encrypt (the broker's published
 * OpenPGP key, GET /v1/keys `openpgp`) `count` notices with openpgp.js, cycling
 * the mix and the three size classes: one armored message each, binary literal
 * data, no compression (openpgp.js's default, and what the gateway stores
 * anyway). The client's cost, paid before the clock starts, as for JOSE.
 */
export async function sealOpenPgpEnvelopes(
  count: number,
  dataDir: string,
  brokerArmored: string,
): Promise<BenchEnvelope[]> {
  const brokerKey = await readKey({ armoredKey: brokerArmored });
  const keys = new Map<string, PrivateKey>();
  const out: BenchEnvelope[] = [];
  for (let i = 0; i < count; i++) {
    const mix = OPENPGP_MIX[i % OPENPGP_MIX.length]!;
    const size = SIZES[Math.floor(i / OPENPGP_MIX.length) % SIZES.length]!;
    const notice = { ...makeNotice(mix.type, size), ...mix.patch };
    const agency = (notice.origin as { agency: string }).agency;
    if (agency !== mix.from) throw new Error(`${mix.type}: origin ${agency}, expected ${mix.from}`);
    let signingKey = keys.get(agency);
    if (!signingKey) {
      const pgp = readCredentials(credentialsPath(dataDir, agency)).openpgp;
      if (!pgp) throw new Error(`${agency} has no OpenPGP key in the demo network`);
      signingKey = await readPrivateKey({ armoredKey: pgp.private_armored });
      keys.set(agency, signingKey);
    }
    const message = await createMessage({ binary: new TextEncoder().encode(JSON.stringify(notice)), format: 'binary' });
    const armored = (await encrypt({
      message,
      encryptionKeys: brokerKey,
      signingKeys: signingKey,
      format: 'armored',
    })) as string;
    out.push({
      id: notice.id as string,
      type: mix.type,
      size,
      bytes: armored.length,
      body: armored,
      mediaType: PGP_MEDIA_TYPE,
    });
  }
  return out;
}
