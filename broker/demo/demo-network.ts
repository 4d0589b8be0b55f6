import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeKeyPair, type KeyKind } from '../keys/jwk.js';
import { makeOpenPgpAgencyKey } from '../keys/openpgp-agency.js';
import type { Agency, Operation, RegistrySeed, Role } from '../registry/model.js';
import { UsageError } from '../core/usage-error.js';
import type { AgencyCredentials } from '../agency-client/credentials.js';

interface DemoAgency {
  id: string;
  country: string;
  name: string;
  roles: Role[];
  sig: KeyKind;
  enc: KeyKind;
  /** Also give the agency an OpenPGP key (registered in openpgp_keys, private part in its credentials). */
  openpgp?: boolean;
  /** Kids as RFC 7638 thumbprints (unique, for a new key of an existing agency) instead of `<id>-sig-1`. */
  thumbprintKids?: boolean;
}

const publish: Role[] = ['publish', 'subscribe'];

/** Agencies of the demo network (after the cooperation described in shared CONTEXT: Mekong Dragon, COMMIT, AIRCOP, organised immigration crime). */
export const DEMO_AGENCIES: DemoAgency[] = [
  {
    id: 'vn-customs',
    country: 'VN',
    name: 'General Department of Vietnam Customs',
    roles: publish,
    sig: 'Ed25519',
    enc: 'X25519',
  },
  {
    id: 'vn-c04',
    country: 'VN',
    name: 'Ministry of Public Security, Drug Crime Investigation Police (C04)',
    roles: publish,
    sig: 'ES256',
    enc: 'P-256-ECDH',
  },
  { id: 'th-customs', country: 'TH', name: 'Thai Customs Department', roles: publish, sig: 'Ed25519', enc: 'X25519' },
  {
    id: 'kh-police-adp',
    country: 'KH',
    name: 'Cambodian National Police, Anti-Drug Department',
    roles: publish,
    sig: 'ES256',
    enc: 'P-256-ECDH',
  },
  { id: 'la-customs', country: 'LA', name: 'Lao Customs Department', roles: publish, sig: 'Ed25519', enc: 'X25519' },
  {
    id: 'cn-customs',
    country: 'CN',
    name: 'General Administration of Customs of China, Anti-Smuggling Bureau',
    roles: publish,
    sig: 'ES256',
    enc: 'P-256-ECDH',
  },
  {
    id: 'gb-border-force',
    country: 'GB',
    name: 'UK Border Force',
    roles: publish,
    sig: 'Ed25519',
    enc: 'X25519',
    openpgp: true,
  },
  {
    id: 'fr-douane',
    country: 'FR',
    name: 'Direction générale des douanes et droits indirects',
    roles: publish,
    sig: 'ES256',
    enc: 'P-256-ECDH',
    openpgp: true,
  },
  {
    id: 'iq-police',
    country: 'IQ',
    name: 'Iraqi Ministry of Interior, Directorate of Border Crossings',
    roles: publish,
    sig: 'Ed25519',
    enc: 'X25519',
    openpgp: true,
  },
  { id: 'hub-auditor', country: 'FR', name: 'Network audit office', roles: ['audit'], sig: 'Ed25519', enc: 'X25519' },
  {
    id: 'hub-operator',
    country: 'FR',
    name: 'Network operations desk (key management)',
    roles: ['operator'],
    sig: 'Ed25519',
    enc: 'X25519',
  },
];

export const DEMO_OPERATIONS: Operation[] = [
  {
    id: 'mekong-dragon-6',
    name: 'Mekong Dragon VI: drugs, wildlife and CITES specimens on all routes',
    status: 'active',
    members: ['vn-customs', 'vn-c04', 'th-customs', 'kh-police-adp', 'la-customs', 'cn-customs'],
    categories: ['drugs', 'wildlife', 'cites'],
  },
  {
    id: 'aircop',
    name: 'AIRCOP: Joint Airport Interdiction Task Forces',
    status: 'active',
    members: ['th-customs', 'gb-border-force', 'fr-douane', 'vn-customs'],
    categories: ['drugs', 'high-risk-travellers', 'illicit-goods'],
  },
  {
    id: 'commit',
    name: 'COMMIT: trafficking in persons in the Mekong',
    status: 'active',
    members: ['vn-c04', 'th-customs', 'kh-police-adp', 'la-customs', 'cn-customs'],
    categories: ['human-trafficking', 'online-fraud'],
  },
  {
    id: 'oic-channel',
    name: 'Organised immigration crime: source, transit and destination',
    status: 'active',
    members: ['gb-border-force', 'fr-douane', 'iq-police', 'vn-c04'],
    categories: ['migrant-smuggling', 'document-fraud'],
  },
  {
    id: 'mekong-sealed',
    name: 'Mekong Dragon VI, end to end: notices the hub routes without reading',
    status: 'active',
    members: ['vn-customs', 'th-customs', 'la-customs', 'cn-customs'],
    categories: ['drugs', 'wildlife'],
    end_to_end: true,
  },
];

export const credentialsPath = (dataDir: string, agency: string) => join(dataDir, 'demo', 'agencies', `${agency}.json`);

export function readCredentials(file: string): AgencyCredentials {
  return JSON.parse(readFileSync(file, 'utf8')) as AgencyCredentials;
}

/**
 * The credentials a CLI command names: --credentials FILE, else --as AGENCY under
 * --data-dir (default $LIAISON_DATA_DIR, then ./data). Throws an Error saying
 * where it looked (never what a file held).
 */
export function credentialsFor(values: {
  as?: string | undefined;
  credentials?: string | undefined;
  'data-dir'?: string | undefined;
}): AgencyCredentials {
  if (!values.as && !values.credentials) throw new UsageError('needs --as AGENCY (or --credentials FILE)');
  const file =
    values.credentials ??
    credentialsPath(values['data-dir'] ?? process.env.LIAISON_DATA_DIR ?? './data', values.as as string);
  try {
    return readCredentials(file);
  } catch {
    throw new Error(
      `cannot read the credentials of ${values.as ?? file} at ${file} (start the demo with npm start, or pass --credentials)`,
    );
  }
}

/** Make one agency's key pairs; returns its private credentials and its public registry record. */
export async function makeAgency(spec: DemoAgency): Promise<{ credentials: AgencyCredentials; record: Agency }> {
  const sig = await makeKeyPair(spec.sig, spec.thumbprintKids ? undefined : `${spec.id}-sig-1`);
  const enc = await makeKeyPair(spec.enc, spec.thumbprintKids ? undefined : `${spec.id}-enc-1`);
  const pgp = spec.openpgp ? await makeOpenPgpAgencyKey(spec.name, `${spec.id}@demo.liaison.invalid`) : undefined;
  return {
    credentials: {
      agency: spec.id,
      country: spec.country,
      signing: sig.privateJwk,
      encryption: enc.privateJwk,
      ...(pgp ? { openpgp: { fingerprint: pgp.record.kid, private_armored: pgp.privateArmored } } : {}),
    },
    record: {
      id: spec.id,
      country: spec.country,
      name: spec.name,
      roles: spec.roles,
      keys: [
        { kid: sig.kid, use: 'sig', jwk: sig.publicJwk as Agency['keys'][number]['jwk'], status: 'active' },
        { kid: enc.kid, use: 'enc', jwk: enc.publicJwk as Agency['keys'][number]['jwk'], status: 'active' },
      ],
      ...(pgp ? { openpgp_keys: [pgp.record] } : {}),
    },
  };
}

/**
 * Create the demo network under dataDir on first start: each agency's private
 * keys in dataDir/demo/agencies/<id>.json (0600) and the registry seed in
 * dataDir/registry.json (0600). Existing files are kept.
 */
export async function ensureDemoNetwork(dataDir: string): Promise<{ created: boolean; seedFile: string }> {
  const seedFile = join(dataDir, 'registry.json');
  if (existsSync(seedFile)) return { created: false, seedFile };
  mkdirSync(join(dataDir, 'demo', 'agencies'), { recursive: true, mode: 0o700 });
  const agencies: Agency[] = [];
  for (const spec of DEMO_AGENCIES) {
    const { credentials, record } = await makeAgency(spec);
    writeFileSync(credentialsPath(dataDir, spec.id), JSON.stringify(credentials, null, 2), { mode: 0o600 });
    agencies.push(record);
  }
  const seed: RegistrySeed = { agencies, operations: DEMO_OPERATIONS };
  writeFileSync(seedFile, JSON.stringify(seed, null, 2), { mode: 0o600 });
  return { created: true, seedFile };
}
