/** `liaison nats ...`: NATS-native subscribers' credentials and consumers (broker/nats/subscriber-auth.ts). */
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.js';
import { RegistrySnapshot, type RegistrySeed } from '../registry/model.js';
import { ensureAgencyConsumers } from './agency-consumers.js';
import { connectNats, natsAuthFromEnv } from './connection.js';
import { BROKER_NATS_USER, HUB_NATS_ACCOUNT, subscriberAuth } from './subscriber-auth.js';

interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const NATS_HELP = `  liaison nats creds --registry FILE --out DIR [--rotate]
      Make nats-server 2.9 accounts and users from the registry (a seed JSON):
      DIR/auth.conf (an "accounts" block to include from the server's config,
      next to a top-level jetstream block): the hub's account ${HUB_NATS_ACCOUNT} with
      JetStream and the broker's full-rights user (DIR/${BROKER_NATS_USER}.json),
      and one account per subscribing agency (agency-ID, no JetStream) that
      imports only its own consumer inbox-ID on DELIVERIES: pull, info, ack.
      Agency credentials in DIR/agencies/ID.json (connect with its
      inbox_prefix and JetStream API prefix js_api_prefix). All files 0600,
      DIR 0700. Passwords already in DIR are kept unless --rotate. Reload the
      server after a change (nats-server --signal reload, or SIGHUP). The
      gateways connect as the broker user:
      NATS_USER=${BROKER_NATS_USER} NATS_PASSWORD_FILE=DIR/${BROKER_NATS_USER}.password.
  liaison nats consumers --nats URL --registry FILE [--creds DIR]
      Operator: create every subscribing agency's durable consumer inbox-ID
      (filter deliveries.ID.*.*), connecting as the broker user from DIR
      (default: the NATS credentials in the environment, as for the gateway).

  NATS commands (nats consumers, audit export, webhook ...) authenticate with
  NATS_USER + NATS_PASSWORD_FILE (or NATS_PASSWORD), NATS_TOKEN or NATS_CREDS,
  else the same keys in the LIAISON_CONFIG file.
`;

const readSeed = (file: string) => RegistrySnapshot.fromSeed(JSON.parse(readFileSync(file, 'utf8')) as RegistrySeed);

function write0600(file: string, text: string) {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600); // an existing file keeps its mode on writeFileSync
}

function existingPasswords(dir: string): Record<string, string> {
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

async function natsCreds(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { registry: { type: 'string' }, out: { type: 'string' }, rotate: { type: 'boolean' } } });
  if (!values.registry || !values.out) throw new Error('nats creds needs --registry FILE and --out DIR');
  const dir = values.out;
  mkdirSync(join(dir, 'agencies'), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // an existing directory keeps its mode on mkdirSync
  chmodSync(join(dir, 'agencies'), 0o700);
  const auth = subscriberAuth(readSeed(values.registry), values.rotate ? {} : { existing: existingPasswords(dir) });
  write0600(join(dir, 'auth.conf'), auth.config);
  write0600(join(dir, `${BROKER_NATS_USER}.json`), JSON.stringify({ user: auth.broker.user, password: auth.broker.password }, null, 2) + '\n');
  // The same password alone, for the gateways' NATS_PASSWORD_FILE.
  write0600(join(dir, `${BROKER_NATS_USER}.password`), `${auth.broker.password}\n`);
  for (const a of auth.agencies) write0600(join(dir, 'agencies', `${a.agency}.json`), JSON.stringify(a, null, 2) + '\n');
  io.out(
    `wrote ${join(dir, 'auth.conf')} (include it from nats-server.conf and reload), ${join(dir, `${BROKER_NATS_USER}.json`)} and ${auth.agencies.length} agency credentials under ${join(dir, 'agencies')}: ${auth.agencies.map((a) => a.agency).join(', ') || '(none)'}\n` +
      `gateways: NATS_USER=${auth.broker.user} NATS_PASSWORD_FILE=${join(dir, `${BROKER_NATS_USER}.password`)}\n`,
  );
  return 0;
}

async function natsConsumers(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { nats: { type: 'string' }, registry: { type: 'string' }, creds: { type: 'string' } } });
  if (!values.nats || !values.registry) throw new Error('nats consumers needs --nats URL and --registry FILE');
  const creds = values.creds ? (JSON.parse(readFileSync(join(values.creds, `${BROKER_NATS_USER}.json`), 'utf8')) as { user: string; password: string }) : undefined;
  const auth = creds ? { natsUser: creds.user, natsPassword: creds.password } : natsAuthFromEnv();
  const bus = await connectNats({ servers: values.nats, name: 'liaison-nats-consumers', publishTimeoutMs: 5000, retryAfterSeconds: 5, logger: createLogger('silent'), auth });
  try {
    const created = await ensureAgencyConsumers(bus.jsm, readSeed(values.registry));
    io.out(created.length ? `created: ${created.join(', ')}\n` : 'every agency consumer was already in place\n');
  } finally {
    await bus.close();
  }
  return 0;
}

export const natsCommands = { 'nats creds': natsCreds, 'nats consumers': natsConsumers };
