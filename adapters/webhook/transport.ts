import type { DeliveryTransport } from '../transport/contract.js';
import { WEBHOOK_LEASE_KEY, WebhookDeliverer } from './deliverer.js';

/** Webhooks: the leased deliverer POSTs each webhook agency's deliveries (deliverer.ts); off with `webhook: false`. */
export const webhookTransport: DeliveryTransport = {
  name: 'webhook',
  worker({ config, logger, holder, lease, deliveries, deadLetters, agencies, signer }) {
    if (!config.webhook) return null;
    return new WebhookDeliverer({
      lease: () => lease(WEBHOOK_LEASE_KEY),
      leaseTtlMs: config.leaseTtlSeconds * 1000,
      deliveries,
      deadLetters,
      agencies,
      signer,
      logger,
      holder,
      timeoutMs: config.webhookTimeoutMs,
      backoffBaseMs: config.webhookBackoffBaseMs,
      backoffMaxMs: config.webhookBackoffMaxMs,
      maxAttempts: config.webhookMaxAttempts,
      allowPrivateNetworks: config.webhookAllowPrivateNetworks,
    });
  },
};
