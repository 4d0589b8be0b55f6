/**
 * NATS credentials on disk: what `liaison nats creds` writes (an accounts
 * config fragment, the broker's password, one file per agency), and the local
 * nats-server that `npm start` runs under the data dir:
 *
 *   <dataDir>/nats/                 0700; JetStream's store (jetstream/) too
 *   <dataDir>/nats/nats-server.conf 0600; listen 127.0.0.1:<port>, jetstream, include "creds/auth.conf"
 *   <dataDir>/nats/url              0600; nats://127.0.0.1:<port>, for the CLI (the port stays the same across starts)
 *   <dataDir>/nats/creds/           0700; `liaison nats creds --out` of the registry: auth.conf, liaison-broker.{json,password}, agencies/<id>.json
 *
 * Only `-c <dataDir>/nats/nats-server.conf` is on the server's command line
 * (a process's command line is world-readable in /proc).
 */
import { existsSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { mkdir0700, write0600 } from '../core/data-dir.js';
import { RegistrySnapshot } from '../registry/model.js';
import { natsAuthFromEnv, type NatsAuthSettings } from './connection.js';
import { BROKER_NATS_USER, HUB_NATS_ACCOUNT, subscriberAuth, type SubscriberAuth } from './subscriber-auth.js';

/** The passwords already issued in a credentials directory, by user name. */
export function existingPasswords(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const files = [join(dir, `${BROKER_NATS_USER}.json`)];
  const ag = join(dir, 'agencies');
  if (existsSync(ag)) for (const f of readdirSync(ag)) if (f.endsWith('.json')) files.push(join(ag, f));
  for (const f of files) {
    if (!existsSync(f)) continue;
    const j = JSON.parse(readFileSync(f, 'utf8')) as { user?: unknown; password?: unknown };
    if (typeof j.user === 'string' && typeof j.password === 'string') out[j.user] = j.password;
  }
  return out;
}

/** The broker's password file in a credentials directory (NATS_PASSWORD_FILE of the gateways). */
export const brokerPasswordFile = (credsDir: string): string => join(credsDir, `${BROKER_NATS_USER}.password`);

/** Write the accounts and credentials of `registry` to `dir` (0700, files 0600), keeping issued passwords unless `rotate`. */
export function writeNatsCreds(
  dir: string,
  registry: RegistrySnapshot,
  opts: { rotate?: boolean } = {},
): SubscriberAuth {
  mkdir0700(dir);
  mkdir0700(join(dir, 'agencies'));
  const auth = subscriberAuth(registry, opts.rotate ? {} : { existing: existingPasswords(dir) });
  write0600(join(dir, 'auth.conf'), auth.config);
  write0600(
    join(dir, `${BROKER_NATS_USER}.json`),
    JSON.stringify({ user: auth.broker.user, password: auth.broker.password }, null, 2) + '\n',
  );
  // The same password alone, for the gateways' NATS_PASSWORD_FILE.
  write0600(brokerPasswordFile(dir), `${auth.broker.password}\n`);
  for (const a of auth.agencies)
    write0600(join(dir, 'agencies', `${a.agency}.json`), JSON.stringify(a, null, 2) + '\n');
  return auth;
}

/** The local nats-server's files under a data dir. */
export function localNatsPaths(dataDir: string) {
  const dir = join(dataDir, 'nats');
  const creds = join(dir, 'creds');
  return {
    dir,
    creds,
    config: join(dir, 'nats-server.conf'),
    url: join(dir, 'url'),
    passwordFile: brokerPasswordFile(creds),
  };
}

const q = (s: string) => JSON.stringify(s);

/**
 * Prepare the local nats-server's config under `dataDir/nats`: the credentials
 * (made from `registry` on the first start only: later changes are
 * `liaison nats creds --out <dataDir>/nats/creds` and a reload, so agencies
 * added since are not dropped), and a config file listening on host:port with
 * JetStream in the file (a reload keeps it on). The port of the previous start
 * is kept when `pickPort` says it is free.
 */
export async function prepareLocalNats(
  dataDir: string,
  registry: RegistrySnapshot | null,
  opts: { host: string; pickPort: (previous: number | null) => Promise<number> },
): Promise<{
  config: string;
  url: string;
  port: number;
  auth: { natsUser: string; natsPasswordFile: string };
  password: string;
  createdCreds: boolean;
  migrated: boolean;
}> {
  const p = localNatsPaths(dataDir);
  mkdir0700(p.dir);
  const migrated = migrateGlobalAccountStore(p.dir);
  let createdCreds = false;
  if (!existsSync(join(p.creds, 'auth.conf')) || !existsSync(p.passwordFile)) {
    writeNatsCreds(p.creds, registry ?? emptyRegistry());
    createdCreds = true;
  } else {
    mkdir0700(p.creds);
  }
  const previous = existsSync(p.url) ? Number(/:(\d+)\s*$/.exec(readFileSync(p.url, 'utf8'))?.[1] ?? NaN) : NaN;
  const port = await opts.pickPort(Number.isInteger(previous) && previous > 0 ? previous : null);
  const url = `nats://${opts.host}:${port}`;
  write0600(
    p.config,
    `# Written by the Liaison gateway at each start (broker/nats/creds-files.ts). The accounts and passwords are in creds/auth.conf.\n` +
      `listen: ${q(`${opts.host}:${port}`)}\n` +
      `jetstream { store_dir: ${q(p.dir)} }\n` +
      `include "creds/auth.conf"\n`,
  );
  write0600(p.url, `${url}\n`);
  const password = readFileSync(p.passwordFile, 'utf8').trim();
  return {
    config: p.config,
    url,
    port,
    auth: { natsUser: BROKER_NATS_USER, natsPasswordFile: p.passwordFile },
    password,
    createdCreds,
    migrated,
  };
}

/**
 * A data dir from before the local server had accounts keeps its streams under
 * the global account (`jetstream/$G`); the server now serves them to the hub's
 * account, so move that store to `jetstream/LIAISON` once (before the server
 * starts). Returns whether it moved.
 */
export function migrateGlobalAccountStore(storeDir: string): boolean {
  const from = join(storeDir, 'jetstream', '$G');
  const to = join(storeDir, 'jetstream', HUB_NATS_ACCOUNT);
  if (!existsSync(from) || existsSync(to)) return false;
  renameSync(from, to);
  return true;
}

const emptyRegistry = (): RegistrySnapshot => RegistrySnapshot.fromSeed({ agencies: [], operations: [] });

/**
 * A CLI command's NATS defaults from the data dir of a local nats-server
 * (the command's --data-dir, else LIAISON_DATA_DIR, else `dataDir` in the LIAISON_CONFIG file, else ./data):
 * its URL, and the broker user with its password file. Used only for what the
 * environment does not set (NATS_URL, NATS_USER...).
 */
export function localNatsDefaults(
  env: NodeJS.ProcessEnv = process.env,
  dataDirFlag?: string,
): { url: string | null; auth: NatsAuthSettings | null } {
  let dataDir = dataDirFlag || env.LIAISON_DATA_DIR || null;
  if (!dataDir && env.LIAISON_CONFIG) {
    try {
      const j = JSON.parse(readFileSync(env.LIAISON_CONFIG, 'utf8')) as { dataDir?: unknown };
      if (typeof j.dataDir === 'string' && j.dataDir) dataDir = j.dataDir;
    } catch {
      /* reported by the command that reads the config */
    }
  }
  const p = localNatsPaths(dataDir ?? './data');
  const url = existsSync(p.url) ? readFileSync(p.url, 'utf8').trim() || null : null;
  const auth = existsSync(p.passwordFile)
    ? {
        natsUser: BROKER_NATS_USER,
        natsPassword: null,
        natsPasswordFile: p.passwordFile,
        natsToken: null,
        natsCreds: null,
      }
    : null;
  return { url, auth };
}

const anyAuth = (a: NatsAuthSettings) => Object.values(a).some((v) => typeof v === 'string' && v !== '');

/** A CLI command's NATS credentials: the environment (and LIAISON_CONFIG), else the local nats-server's broker user from the data dir. */
export function cliNatsAuth(env: NodeJS.ProcessEnv = process.env, dataDir?: string): NatsAuthSettings {
  const fromEnv = natsAuthFromEnv(env);
  if (anyAuth(fromEnv)) return fromEnv;
  return localNatsDefaults(env, dataDir).auth ?? fromEnv;
}

/** A CLI command's NATS URL: --nats, else NATS_URL, else the local nats-server's (dataDir/nats/url). */
export const cliNatsUrl = (
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  dataDir?: string,
): string | null => flag || env.NATS_URL || localNatsDefaults(env, dataDir).url;
