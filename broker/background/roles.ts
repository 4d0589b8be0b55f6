/**
 * The background roles of a gateway: the router (step 9, fan-out) and the
 * checkpointer (the signed log's Merkle tree and checkpoints). Every gateway's
 * router routes a share (one shared consumer); the checkpointer runs only
 * while it holds its lease. Built here once, whether they run on the
 * gateway's event loop or on the background thread (thread.ts, worker.ts).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { BrokerKeyring } from '../keys/broker-keys.js';
import { Checkpointer } from '../log/checkpointer.js';
import type { NatsBus } from '../nats/connection.js';
import type { RegistrySnapshot } from '../registry/model.js';
import { Router, type RouterObserver } from '../routing/router.js';
import { createDeliverySealers } from '../routing/seal.js';

export interface BackgroundRoleDeps {
  config: Config;
  bus: NatsBus;
  keyring: BrokerKeyring;
  registry: () => RegistrySnapshot;
  logger: Logger;
  /** This instance's name in the lease it takes (the checkpointer's; the router takes none). */
  holder: string;
  observer?: RouterObserver;
  now?: () => Date;
}

export interface BackgroundRoles {
  /** null when config.router is false. */
  router: Router | null;
  /** null when config.checkpointer is false. */
  checkpointer: Checkpointer | null;
  start(): void;
}

export async function createBackgroundRoles(d: BackgroundRoleDeps): Promise<BackgroundRoles> {
  const { config, bus, keyring, logger } = d;
  const router = config.router
    ? new Router({
        bus,
        registry: d.registry,
        logger,
        ackWaitSeconds: config.routerAckWaitSeconds,
        duplicateWindowSeconds: config.duplicateWindowSeconds,
        replicas: config.streamReplicas,
        storageKeys: keyring,
        ...(d.now ? { now: d.now } : {}),
        ...(d.observer ? { observer: d.observer } : {}),
        // Every format's deliveries; OpenPGP ones are signed by the broker's current OpenPGP key (none: not made).
        sealers: createDeliverySealers({ openPgpSigningKey: keyring.openpgp?.decryptionKeys[0] }),
      })
    : null;
  const checkpointer = config.checkpointer
    ? await Checkpointer.create({
        bus,
        keyring,
        logger,
        origin: config.brokerId,
        everyEntries: config.checkpointEveryEntries,
        everyMs: config.checkpointIntervalMs,
        leaseTtlMs: config.leaseTtlSeconds * 1000,
        replicas: config.streamReplicas,
        holder: d.holder,
      })
    : null;
  return {
    router,
    checkpointer,
    start() {
      router?.start();
      checkpointer?.start();
    },
  };
}
