import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ENVELOPE_FORMATS } from './formats/registry.js';
import type { Config } from './config/config.js';
import type { EnvelopeAdapter } from './core/envelope.js';
import { buildApp } from './http/app.js';
import { buildOpsApp } from './http/ops.js';
import { tlsSetup } from './http/tls.js';
import { readMetricsToken } from './http/metrics.js';
import { readableByOthers } from './core/secret-file.js';
import { natsReplayGuard } from './auth/replay-guard.js';
import { createIngestPipeline } from './ingest/pipeline.js';
import { createSignerResolver } from './keys/jwk-signers.js';
import { loadOrCreateBrokerKeys, type BrokerKeyring } from './keys/broker-keys.js';
import { connectNats, type NatsBus } from './nats/connection.js';
import { ensureStreams } from './nats/streams.js';
import { CheckpointStore } from './log/checkpoint-store.js';
import { TileStore } from './log/tiles.js';
import { findNoticeEntry } from './log/notice-lookup.js';
import { natsLogWriter, openNoticeIds } from './log/notice-writer.js';
import type { RegistrySeed } from './registry/model.js';
import { RegistryStore } from './registry/store.js';
import { defaultKekPath, KeyringStore, loadOrCreateKek } from './keys/keyring-store.js';
import { KeyAdmin } from './admin/key-admin.js';
import { contentEraser } from './erasure/erase.js';
import { RetentionEraser, reviewDue } from './erasure/retention.js';
import { createNoticeValidator, createRegistryValidator } from './schemas/notice-validator.js';
import { ROUTER_CONSUMER } from './routing/router.js';
import { deliveredOriginal } from './routing/delivered.js';
import { createBackgroundRoles } from './background/roles.js';
import { BackgroundThread, type CheckpointerView, type RouterView } from './background/thread.js';
import { readCheckpointLag } from './log/checkpoint-lag.js';
import { Metrics } from './metrics/metrics.js';
import type { TransportWorker } from '../adapters/transport/contract.js';
import { transportWorkers } from './transports/registry.js';
import { natsTransportContext } from './transports/nats-context.js';
import { webhookUrlRefusal } from '../adapters/webhook/url-policy.js';
import { hostname } from 'node:os';
import { settlesWithin } from './core/sleep.js';
import { randomUUID } from 'node:crypto';
import { integrity } from './core/integrity.js';

/** How long close() waits for each background worker (background thread or router and checkpointer, webhooks). */
const CLOSE_TIMEOUT_MS = 10_000;

export interface Gateway {
  app: FastifyInstance;
  /** The operations listener's app (GET /healthz, /readyz, /metrics; plain HTTP): main.ts listens on opsHost:opsPort. */
  ops: FastifyInstance;
  bus: NatsBus;
  registry: RegistryStore;
  keyring: BrokerKeyring;
  /** The key-lifecycle admin service (also served at /v1/admin/*). */
  admin: KeyAdmin;
  /** The router of this instance (it routes only while it holds the lease; on the background thread by default); null when config.router is false. */
  router: RouterView | null;
  /** The signed log's checkpointer (it checkpoints only while it holds the lease; on the background thread by default); null when config.checkpointer is false. */
  checkpointer: CheckpointerView | null;
  /** The retention eraser of this instance (it erases only while it holds the lease `retention`); null when config.retentionEraser is false. */
  retention: RetentionEraser | null;
  /** Prometheus metrics of this gateway (GET /metrics). */
  metrics: Metrics;
  /** What the delivery transports run on this instance, by transport name (broker/transports/registry.ts). */
  transports: ReadonlyMap<string, TransportWorker>;
  /** Webhook delivery of this instance (it delivers only while it holds the lease `webhook`); null when config.webhook is false. */
  webhooks: TransportWorker | null;
  close(): Promise<void>;
}

export interface GatewayOptions {
  config: Config;
  logger: Logger;
  natsUrl: string;
  /** Envelope adapters; by default every registered format's opener (broker/formats/registry.ts). */
  adapters?: readonly EnvelopeAdapter[];
  now?: () => Date;
}

/** The composition root: connect NATS, check streams, load registry and keys, compile schemas, build the HTTP app. */
export async function createGateway(opts: GatewayOptions): Promise<Gateway> {
  const { config, logger } = opts;
  integrity.useLogger(logger);
  // Schemas are compiled once, before anything connects: a broken schema stops start-up.
  const validator = createNoticeValidator();
  const validateRegistry = createRegistryValidator();
  const metrics = new Metrics();
  const { keyring } = await loadOrCreateBrokerKeys(config.dataDir, config.brokerId, opts.now);
  // The key-encryption key is read before anything connects: every instance of a network needs the same one.
  const kek = loadOrCreateKek(
    config.keyEncryptionKeyFile ?? defaultKekPath(config.dataDir),
    config.keyEncryptionKeyFile === null,
  );
  // TLS material is read before anything connects: a missing or bad file stops start-up.
  const tls = config.tls ? await tlsSetup(config, logger) : null;
  const metricsToken = config.metricsTokenFile ? readMetricsToken(config.metricsTokenFile) : undefined;
  if (config.metricsTokenFile && readableByOthers(config.metricsTokenFile))
    logger.warn(
      { event: 'metrics-token-file-mode', file: config.metricsTokenFile },
      'the metrics token file can be read by other users; chmod 600 it',
    );

  const built: { app?: FastifyInstance; ops?: FastifyInstance; registry?: RegistryStore; keyringStore?: KeyringStore } =
    {};
  const bus = await connectNats({
    servers: opts.natsUrl,
    name: `liaison-gateway-${config.brokerId}`,
    publishTimeoutMs: config.publishTimeoutMs,
    logger,
    auth: config,
  });
  try {
    await ensureStreams(bus.jsm, {
      duplicateWindowSeconds: config.duplicateWindowSeconds,
      replicas: config.streamReplicas,
      deliveriesMaxAgeSeconds: config.deliveriesMaxAgeSeconds,
    });
    // Notice ids are unique for the log's lifetime (create-only records, no TTL; broker/log/notice-writer.ts).
    await openNoticeIds(bus, config.streamReplicas);
    const registry = (built.registry = await RegistryStore.open(bus, validateRegistry, logger, config.streamReplicas));
    const seedFile = config.registrySeed ?? join(config.dataDir, 'registry.json');
    if (existsSync(seedFile)) {
      const seeded = await registry.seedIfEmpty(JSON.parse(readFileSync(seedFile, 'utf8')) as RegistrySeed);
      if (seeded) logger.info({ event: 'registry-seeded', file: seedFile }, 'registry seeded');
    } else if (config.registrySeed !== null) {
      throw new Error(`LIAISON_REGISTRY_SEED: ${seedFile} does not exist`);
    }
    await registry.watch();
    // The broker keyring is shared through KV: a rotation made through any instance reaches every one.
    const keyringStore = (built.keyringStore = await KeyringStore.open({
      bus,
      keyring,
      kek,
      dataDir: config.dataDir,
      logger,
      replicas: config.streamReplicas,
    }));
    const admin = new KeyAdmin({
      bus,
      registry,
      keyring,
      keyringStore,
      brokerId: config.brokerId,
      encryptionKeyGraceSeconds: config.encryptionKeyGraceSeconds,
      storageKeyDropAfterSeconds: config.storageKeyDropAfterSeconds,
      agencyKeyOverlapSeconds: config.agencyKeyOverlapSeconds,
      logger,
      webhookUrlRefusal: (url) => webhookUrlRefusal(url, { allowPrivateNetworks: config.webhookAllowPrivateNetworks }),
      eraseContent: contentEraser({ bus, signer: () => keyring.signing, logger }),
      ...(opts.now ? { now: opts.now } : {}),
    });
    await admin.ensureKeyringEventLogged();
    // A keyring from before sealing at rest gets its first storage key now (a logged broker key change).
    await admin.ensureStorageKey();
    // Finish a storage key rotation an instance was interrupted in (a no-op when there is none).
    await admin
      .finishStorageRotation()
      .catch((e: unknown) =>
        logger.warn(
          { event: 'storage-rewrap-failed', err: { message: (e as Error).message } },
          'notice keys not re-wrapped yet; the next rotation or start-up does it',
        ),
      );
    const snapshot = () => registry.snapshot;
    // Every registered format the broker can open (OpenPGP only with a broker OpenPGP key).
    const adapters =
      opts.adapters ??
      ENVELOPE_FORMATS.flatMap(
        (f) =>
          f.opener({
            openPgpDecryptionKeys: keyring.openpgp?.decryptionKeys,
            registry: snapshot,
            maxEnvelopeBytes: config.bodyLimitBytes,
            now: opts.now,
          }) ?? [],
      );
    const resolveSigner = createSignerResolver(snapshot, opts.now);
    const replay = await natsReplayGuard(bus, config.streamReplicas);
    const ingest = createIngestPipeline({
      adapters,
      keyring,
      registry: snapshot,
      resolveSigner,
      validator,
      log: natsLogWriter(bus, keyring),
      originals: { find: (id) => findNoticeEntry(bus, id), delivered: (original) => deliveredOriginal(bus, original) },
      limits: config,
      observer: metrics.pipeline,
      ...(opts.now ? { now: opts.now } : {}),
    });
    // The signed log: the checkpoint origin (and signing key name) is the broker id.
    const checkpoints = await CheckpointStore.open(
      bus,
      config.brokerId,
      () => keyring.verificationKeys,
      config.streamReplicas,
    );
    const tiles = await TileStore.open(bus, config.streamReplicas);
    // The checkpointer starts after the app is built; /readyz reads its status through this.
    let checkpointerView: CheckpointerView | null = null;
    const app = (built.app = await buildApp({
      logger,
      bus,
      keyring,
      admin,
      reviewDue: (limit) =>
        reviewDue(bus, registry.snapshot, config.reviewDays, (opts.now ?? (() => new Date()))(), limit),
      ingest,
      bodyLimitBytes: config.bodyLimitBytes,
      envelopeMediaTypes: adapters.flatMap((a) => a.mediaTypes),
      checkpointer: () => checkpointerView,
      log: { checkpoints, tiles },
      auth: { brokerId: config.brokerId, registry: snapshot, resolveSigner, replay },
      inbox: { heartbeatSeconds: config.sseHeartbeatSeconds },
      acks: { clockSkewSeconds: config.clockSkewSeconds, ...(opts.now ? { now: opts.now } : {}) },
      metrics,
      ...(metricsToken ? { metricsToken } : {}),
      ...(tls ? { https: tls.https } : {}),
      trustProxy: config.trustProxy
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
      connections: {
        requestTimeoutMs: config.requestTimeoutMs,
        idleTimeoutMs: config.idleTimeoutMs,
        maxConnections: config.maxConnections,
        maxConnectionsPerAddress: config.maxConnectionsPerAddress,
      },
      ...(tls && config.mtls !== 'off' ? { clientCert: { mode: config.mtls, registry: snapshot, crl: tls.crl } } : {}),
      limits: {
        rateLimitMax: config.rateLimitMax,
        rateLimitWindowMs: config.rateLimitWindowMs,
        maxEventLoopDelayMs: config.maxEventLoopDelayMs,
        maxHeapUsedBytes: config.maxHeapUsedBytes,
        maxRssBytes: config.maxRssBytes,
        sampleIntervalMs: config.pressureSampleIntervalMs,
      },
      retryAfterSeconds: config.retryAfterSeconds,
    }));
    const ops = (built.ops = await buildOpsApp({
      logger,
      bus,
      metrics,
      metricsToken,
      checkpointer: () => checkpointerView,
      retryAfterSeconds: config.retryAfterSeconds,
    }));
    // This instance's name in the leases it takes (router, webhooks).
    const holder = `${config.brokerId}/${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
    // The router and the checkpointer: on the background thread (default), or on this event loop. A test clock (opts.now)
    // cannot cross into a thread, so a gateway given one keeps them here.
    const wantRoles = config.router || config.checkpointer;
    const inThread = wantRoles && config.backgroundThread && !opts.now;
    const roles =
      wantRoles && !inThread
        ? await createBackgroundRoles({
            config,
            bus,
            keyring,
            registry: snapshot,
            logger,
            holder,
            observer: metrics.router,
            ...(opts.now ? { now: opts.now } : {}),
          })
        : null;
    const transports = transportWorkers(
      natsTransportContext({ config, logger, holder, bus, registry: snapshot, keyring }),
    );
    // Notices past their retention, erased under a lease of their own (broker/erasure/retention.ts).
    const retention = config.retentionEraser
      ? new RetentionEraser({
          bus,
          erase: (actor, id, req) => admin.eraseNotice(actor, id, req),
          actor: () => ({ broker: config.brokerId, kid: keyring.signing.kid }),
          registry: snapshot,
          retentionDays: config.retentionDays,
          sweepIntervalMs: config.retentionSweepIntervalMs,
          holder,
          leaseTtlSeconds: config.leaseTtlSeconds,
          replicas: config.streamReplicas,
          logger,
          ...(opts.now ? { now: opts.now } : {}),
        })
      : null;
    // Background workers start only once nothing else can fail, so a failed start leaves none running.
    await keyringStore.watch();
    const background = inThread
      ? await BackgroundThread.start({ config, natsUrl: opts.natsUrl, holder, logger, observer: metrics.router })
      : null;
    roles?.start();
    retention?.start();
    for (const w of transports.values()) w.start();
    const router = background?.router ?? roles?.router ?? null;
    const checkpointer = background?.checkpointer ?? roles?.checkpointer ?? null;
    checkpointerView = checkpointer;
    const threads = () => background?.threadIds ?? { sealing: roles?.router?.sealingThreadId };
    metrics.attach({
      bus,
      router,
      checkpointer,
      routerConsumer: ROUTER_CONSUMER,
      threads,
      checkpointLag: () => readCheckpointLag(bus),
    });
    return {
      app,
      ops,
      bus,
      registry,
      keyring,
      admin,
      router,
      checkpointer,
      transports,
      webhooks: transports.get('webhook') ?? null,
      retention,
      metrics,
      async close() {
        // Shutdown must end: each background worker gets a bounded time to stop, and
        // one that does not is named in the log rather than holding the process.
        const bounded = async (what: string, p: Promise<void> | undefined) => {
          if (p && !(await settlesWithin(p, CLOSE_TIMEOUT_MS)))
            logger.error({ event: 'close-timeout', component: what }, 'a component did not stop in time');
        };
        for (const [name, w] of transports) await bounded(name === 'webhook' ? 'webhooks' : name, w.close());
        await bounded('retention', retention?.close());
        await bounded('background', background?.close());
        await bounded('router', roles?.router?.close());
        await bounded('checkpointer', roles?.checkpointer?.close());
        await app.close();
        await ops.close();
        metrics.close();
        keyringStore.close();
        registry.close();
        await bus.close();
      },
    };
  } catch (e) {
    // Nothing started may outlive a failed start: its timers would keep the process alive.
    await built.app?.close().catch(() => undefined);
    await built.ops?.close().catch(() => undefined);
    built.registry?.close();
    built.keyringStore?.close();
    await bus.close();
    throw e;
  }
}
