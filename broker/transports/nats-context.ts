import type { Logger } from 'pino';
import type { TransportContext } from '../../adapters/transport/contract.js';
import type { Config } from '../config/config.js';
import type { BrokerKeyring } from '../keys/broker-keys.js';
import type { NatsBus } from '../nats/connection.js';
import { openKvLease } from '../nats/kv-lease.js';
import type { Agency, RegistrySnapshot } from '../registry/model.js';
import { natsDeliveryQueues } from '../routing/delivery-queues.js';

const settingsOf = (a: Agency) => ({ id: a.id, subscribes: a.roles.includes('subscribe'), webhookUrl: a.webhook?.url });

/** What the transports get on a gateway: DELIVERIES and DEADLETTER in JetStream, leases in KV, the live registry, the broker's signing key. */
export function natsTransportContext(d: {
  config: Config;
  logger: Logger;
  holder: string;
  bus: NatsBus;
  registry: () => RegistrySnapshot;
  keyring: BrokerKeyring;
}): TransportContext {
  const { config, bus, registry, keyring } = d;
  const { source, deadLetters } = natsDeliveryQueues(bus);
  return {
    config,
    logger: d.logger,
    holder: d.holder,
    lease: (key) => openKvLease(bus, key, d.holder, config.leaseTtlSeconds * 1000, config.streamReplicas),
    deliveries: source,
    deadLetters,
    agencies: {
      agencies: () => registry().agencies().map(settingsOf),
      agency: (id) => {
        const a = registry().agency(id);
        return a ? settingsOf(a) : undefined;
      },
    },
    signer: () => ({ issuer: keyring.brokerId, key: keyring.signing }),
  };
}
