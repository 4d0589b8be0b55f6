/** `liaison nats ...`: NATS-native subscribers' credentials and consumers (broker/nats/subscriber-auth.ts). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../core/usage-error.js';
import { createLogger } from '../core/logger.js';
import { RegistrySnapshot, type RegistrySeed } from '../registry/model.js';
import { ensureAgencyConsumers } from '../nats/agency-consumers.js';
import { connectNats } from '../nats/connection.js';
import { cliNatsAuth, cliNatsUrl, writeNatsCreds } from '../nats/creds-files.js';
import { BROKER_NATS_USER, HUB_NATS_ACCOUNT } from '../nats/subscriber-auth.js';
import type { Io } from './liaison.js';

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
  liaison nats consumers [--nats URL] --registry FILE [--creds DIR]
      Operator: create every subscribing agency's durable consumer inbox-ID
      (filter deliveries.ID.*.*), connecting as the broker user from DIR
      (default: the NATS credentials in the environment, as for the gateway).

  NATS commands (nats consumers, audit export, webhook ...) authenticate with
  NATS_USER + NATS_PASSWORD_FILE (or NATS_PASSWORD), NATS_TOKEN or NATS_CREDS,
  else the same keys in the LIAISON_CONFIG file, else, for the nats-server
  that npm start runs, the broker user of the data dir (LIAISON_DATA_DIR,
  default ./data: nats/creds/${BROKER_NATS_USER}.password). Without --nats and
  NATS_URL they connect to that server (the URL in DATA_DIR/nats/url).
`;

const readSeed = (file: string) => RegistrySnapshot.fromSeed(JSON.parse(readFileSync(file, 'utf8')) as RegistrySeed);

async function natsCreds(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { registry: { type: 'string' }, out: { type: 'string' }, rotate: { type: 'boolean' } },
  });
  if (!values.registry || !values.out) throw new UsageError('needs --registry FILE and --out DIR');
  const dir = values.out;
  const auth = writeNatsCreds(dir, readSeed(values.registry), { rotate: values.rotate === true });
  io.out(
    `wrote ${join(dir, 'auth.conf')} (include it from nats-server.conf and reload), ${join(dir, `${BROKER_NATS_USER}.json`)} and ${auth.agencies.length} agency credentials under ${join(dir, 'agencies')}: ${auth.agencies.map((a) => a.agency).join(', ') || '(none)'}\n` +
      `gateways: NATS_USER=${auth.broker.user} NATS_PASSWORD_FILE=${join(dir, `${BROKER_NATS_USER}.password`)}\n`,
  );
  return 0;
}

async function natsConsumers(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { nats: { type: 'string' }, registry: { type: 'string' }, creds: { type: 'string' } },
  });
  const url = cliNatsUrl(values.nats);
  if (!url || !values.registry)
    throw new UsageError(
      'needs --nats URL (or NATS_URL, or a data dir whose local nats-server wrote nats/url) and --registry FILE',
    );
  const creds = values.creds
    ? (JSON.parse(readFileSync(join(values.creds, `${BROKER_NATS_USER}.json`), 'utf8')) as {
        user: string;
        password: string;
      })
    : undefined;
  const auth = creds ? { natsUser: creds.user, natsPassword: creds.password } : cliNatsAuth();
  const bus = await connectNats({
    servers: url,
    name: 'liaison-nats-consumers',
    publishTimeoutMs: 5000,
    logger: createLogger('silent'),
    auth,
  });
  try {
    const created = await ensureAgencyConsumers(bus.jsm, readSeed(values.registry));
    io.out(created.length ? `created: ${created.join(', ')}\n` : 'every agency consumer was already in place\n');
  } finally {
    await bus.close();
  }
  return 0;
}

export const natsCommands = { 'nats creds': natsCreds, 'nats consumers': natsConsumers };
