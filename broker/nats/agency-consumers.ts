import { AckPolicy, DeliverPolicy, type ConsumerConfig, type JetStreamManager } from 'nats';
import { isNotFound } from './errors.js';
import type { RegistrySnapshot } from '../registry/model.js';
import { STREAMS } from './streams.js';
import { agencyDurable, agencyFilter, subscribingAgencies } from './subscriber-auth.js';

/** The durable pull consumer an agency reads its deliveries through (NATS-native subscribers). */
export function agencyConsumerConfig(agency: string): Partial<ConsumerConfig> {
  return {
    durable_name: agencyDurable(agency),
    filter_subject: agencyFilter(agency),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 30_000_000_000,
    max_ack_pending: 1000,
    description: `NATS-native reading of ${agency}'s deliveries (created by the broker; the agency cannot change it)`,
  };
}

/**
 * Create (as the broker) the durable consumer of every subscribing agency, and
 * re-create one whose filter is not the agency's own (it would show other
 * agencies' deliveries). Returns the durable names created.
 */
export async function ensureAgencyConsumers(jsm: JetStreamManager, registry: RegistrySnapshot): Promise<string[]> {
  const created: string[] = [];
  for (const agency of subscribingAgencies(registry)) {
    const want = agencyConsumerConfig(agency);
    const name = want.durable_name as string;
    let info;
    try {
      info = await jsm.consumers.info(STREAMS.deliveries, name);
    } catch (e) {
      if (!isNotFound(e, 'consumer')) throw e;
    }
    if (info && info.config.filter_subject === want.filter_subject && !info.config.deliver_subject) continue;
    if (info) await jsm.consumers.delete(STREAMS.deliveries, name);
    await jsm.consumers.add(STREAMS.deliveries, want);
    created.push(name);
  }
  return created;
}
