import type { DeliveryTransport } from '../../adapters/transport/contract.js';

/**
 * NATS-native: an agency reads its deliveries itself, through its own durable consumer on DELIVERIES
 * (agency-consumers.ts, made by `liaison nats` with the agency's NATS account); the gateway runs nothing for it.
 */
export const natsConsumerTransport: DeliveryTransport = {
  name: 'nats',
  worker: () => null,
};
