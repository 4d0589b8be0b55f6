/**
 * The delivery transports (adapters/transport/contract.ts). Adding one: its folder, and one line here.
 */
import type { DeliveryTransport, TransportContext, TransportWorker } from '../../adapters/transport/contract.js';
import { inboxTransport } from '../../adapters/sse/transport.js';
import { webhookTransport } from '../../adapters/webhook/transport.js';
import { natsConsumerTransport } from '../nats/consumer-transport.js';

export const DELIVERY_TRANSPORTS: readonly DeliveryTransport[] = [
  inboxTransport,
  webhookTransport,
  natsConsumerTransport,
];

/** The workers the transports run on this gateway, by transport name (not started yet). */
export function transportWorkers(
  ctx: TransportContext,
  transports: readonly DeliveryTransport[] = DELIVERY_TRANSPORTS,
): Map<string, TransportWorker> {
  const workers = new Map<string, TransportWorker>();
  for (const t of transports) {
    const w = t.worker(ctx);
    if (w) workers.set(t.name, w);
  }
  return workers;
}
