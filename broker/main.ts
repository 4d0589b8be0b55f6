import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config/config.js';
import { GATEWAY_NODE_ARGS, heapLimitCheck } from './core/heap-limits.js';
import { PRIVATE_UMASK, securePrivateDir } from './core/data-dir.js';
import { createLogger } from './core/logger.js';
import { DEMO_AGENCIES, ensureDemoNetwork } from './demo/demo-network.js';
import { Pki } from '../certs/pki.js';
import { createGateway } from './gateway.js';
import {
  findNatsServer,
  freePort,
  NATS_INSTALL_HINT,
  portFree,
  startLocalNats,
  type LocalNats,
} from './nats/local-server.js';
import { prepareLocalNats } from './nats/creds-files.js';
import { RegistrySnapshot, type RegistrySeed } from './registry/model.js';

const out = (line: string) => process.stdout.write(line + '\n');
/** A path as one shell word: as it is when it is plain, else in single quotes. */
const shellWord = (s: string) => (/^[\w./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

async function main(): Promise<number> {
  // Everything this process and its nats-server child write is for the owner alone (core/data-dir.ts).
  process.umask(PRIVATE_UMASK);
  const { values } = parseArgs({
    options: { demo: { type: 'boolean' }, config: { type: 'string' } },
    allowPositionals: false,
  });
  const env = { ...process.env };
  if (values.config) env.LIAISON_CONFIG = values.config;
  let config;
  try {
    config = loadConfig(env, values.demo ? { demo: true } : {});
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`liaison: bad configuration: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const logger = createLogger(config.logLevel);
  const { narrowedFrom } = securePrivateDir(config.dataDir);
  if (narrowedFrom !== null)
    logger.warn(
      { event: 'data-dir-mode', dataDir: config.dataDir, was: narrowedFrom.toString(8) },
      'the data dir could be read by other users; narrowed to 0700',
    );
  const heap = heapLimitCheck();
  if (!heap.asIntended) {
    // Not fatal: the heap's limit only changes how much memory the gateway uses under load (heap-limits.ts).
    logger.warn(
      { event: 'heap-limit', heap_limit_mb: heap.heapLimitMb, expected_node_args: GATEWAY_NODE_ARGS },
      "started without the gateway's V8 flags (npm start and the image pass them): its memory under load can grow past what docs/benchmarks.md measured",
    );
  }

  let nats: LocalNats | undefined;
  let natsUrl = config.natsUrl;
  if (natsUrl === null) {
    const bin = findNatsServer(config.natsServerBin);
    if (!bin) {
      process.stderr.write(`liaison: ${NATS_INSTALL_HINT}\n`);
      return 1;
    }
    // The demo network first: its subscribing agencies get their NATS accounts in the local server's first config.
    if (config.demo) {
      const { created } = await ensureDemoNetwork(config.dataDir);
      if (created) logger.info({ event: 'demo-created', dataDir: config.dataDir }, 'created the demo network');
    }
    // Authentication required: the hub's account with the broker user (password kept across restarts in a 0600 file),
    // one account per subscribing agency of the seed (broker/nats/creds-files.ts). Only -c FILE on the command line.
    const seedFile = config.registrySeed ?? join(config.dataDir, 'registry.json');
    const seed = existsSync(seedFile)
      ? RegistrySnapshot.fromSeed(JSON.parse(readFileSync(seedFile, 'utf8')) as RegistrySeed)
      : null;
    const host = '127.0.0.1';
    const local = await prepareLocalNats(config.dataDir, seed, {
      host,
      pickPort: async (previous) => (previous !== null && (await portFree(host, previous)) ? previous : freePort(host)),
    });
    if (local.migrated)
      logger.info(
        { event: 'nats-store-migrated', dir: join(config.dataDir, 'nats', 'jetstream') },
        "moved the local JetStream store from the global account to the hub's account LIAISON",
      );
    if (local.createdCreds)
      logger.info(
        { event: 'nats-creds-created', dir: join(config.dataDir, 'nats', 'creds') },
        'created the local nats-server accounts and credentials',
      );
    nats = await startLocalNats({
      bin,
      storeDir: join(config.dataDir, 'nats'),
      host,
      port: local.port,
      configFile: local.config,
      readyAuth: { user: local.auth.natsUser, pass: local.password },
    });
    natsUrl = nats.url;
    // The gateway (and its background thread) connect to its own child as the broker user, whatever NATS_USER... say.
    config = Object.freeze({
      ...config,
      natsUser: local.auth.natsUser,
      natsPasswordFile: local.auth.natsPasswordFile,
      natsPassword: null,
      natsToken: null,
      natsCreds: null,
    });
    logger.info(
      { event: 'nats-started', url: nats.url, pid: nats.pid, config: local.config },
      'started a local nats-server (authentication required)',
    );
  } else if (config.demo) {
    const { created } = await ensureDemoNetwork(config.dataDir);
    if (created) logger.info({ event: 'demo-created', dataDir: config.dataDir }, 'created the demo network');
  }
  if (config.demo && config.tls) {
    // The demo network's PKI: a dev CA, the gateway's certificate and one client certificate per agency (certs/pki.ts).
    const names = config.tlsServerNames
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    const { created } = Pki.init(join(config.dataDir, 'pki'), {
      agencies: DEMO_AGENCIES.map((a) => a.id),
      serverNames: names,
    });
    if (created.length > 0)
      logger.info({ event: 'demo-pki-created', dir: join(config.dataDir, 'pki') }, 'created the demo PKI');
  }

  process.on('exit', () => nats?.child.kill('SIGTERM'));
  const gateway = await createGateway({ config, logger, natsUrl }).catch(async (e) => {
    await nats?.stop();
    throw e;
  });
  // The operations listener first: a port in use stops start-up before any client is served.
  const opsAddress =
    config.opsPort === 0
      ? null
      : await gateway.ops.listen({ host: config.opsHost, port: config.opsPort }).catch((e: NodeJS.ErrnoException) => {
          throw new Error(
            `the operations listener cannot listen on ${config.opsHost}:${config.opsPort} (${e.code ?? e.message}): set LIAISON_OPS_PORT to a free port, or 0 for none`,
          );
        });
  const address = await gateway.app.listen({ host: config.host, port: config.port });
  // A URL may carry user:password@; never print it.
  const shownNats = natsUrl.replace(/\/\/[^@/,]*@/g, '//***@');
  out(
    `Liaison broker "${config.brokerId}" listening on ${address} (NATS ${shownNats}${nats ? `, local nats-server pid ${nats.pid}` : ''})`,
  );
  out(
    opsAddress
      ? `Operations (GET /healthz, /readyz, /metrics; plain HTTP, no client certificate): ${opsAddress}`
      : 'Operations listener off (LIAISON_OPS_PORT=0).',
  );
  if (config.demo) {
    out(
      'Demo network: agencies vn-customs, vn-c04, th-customs, kh-police-adp, la-customs, cn-customs, gb-border-force, fr-douane, iq-police;',
    );
    out(
      '              operations mekong-dragon-6, aircop, commit, oic-channel, mekong-sealed (end to end); auditor hub-auditor; operator hub-operator (liaison admin ...).',
    );
    out('              Keys under ' + join(config.dataDir, 'demo', 'agencies'));
    out('Send a first notice:');
    // Over HTTPS the CLI trusts the demo CA (server authentication; the notice's signature proves its origin), and presents the agency's certificate when mTLS is on.
    const pki = join(config.dataDir, 'pki');
    const tlsArgs = config.tls
      ? ` --ca ${join(pki, 'ca.crt')}${config.mtls !== 'off' ? ` --cert ${join(pki, 'agencies', 'vn-customs.crt')} --key ${join(pki, 'agencies', 'vn-customs.key')}` : ''}`
      : '';
    // The CLI finds the demo keys under ./data unless told: name the data dir when it is elsewhere, so the command runs as printed.
    const dataDirArg = config.dataDir === resolve('data') ? '' : ` --data-dir ${shellWord(config.dataDir)}`;
    out(
      `  npx liaison notice send docs/examples/notices/seizure-report.json --as vn-customs --stamp${dataDirArg} --url ${address}${tlsArgs}`,
    );
  } else if (gateway.registry.snapshot.agencies().length === 0) {
    // A first start without --demo and without a seed: a working broker that nobody can use yet; say what to do.
    out('The member registry is empty: no agency can send or read yet.');
    out('  A demo network: start with --demo (npm start -- --demo).');
    out(
      `  Your own: stop, put the registry (schemas/registry.schema.json) in ${join(config.dataDir, 'registry.json')} or LIAISON_REGISTRY_SEED, start again.`,
    );
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'shutdown', signal }, 'shutting down');
    await gateway.close().catch((e) => logger.error({ err: (e as Error).message }, 'gateway close failed'));
    await nats?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  return 0;
}

main().then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`liaison: start-up failed: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
