import { integrity, kvWhere } from '../core/integrity.js';
import type { StorePort } from '../core/store-port.js';
import { jtiKey, MAX_ASSERTION_LIFETIME, type ReplayGuard } from './client-assertion.js';

export const JTI_BUCKET = 'assertion-jti';

const CLAIMED = new Uint8Array(0);

/**
 * jti replay protection shared by every gateway: a KV bucket whose entries
 * expire after the longest assertion lifetime (nats-server 2.9 has bucket TTL,
 * not per-key TTL). The claim is atomic, so two gateways cannot both accept a jti.
 */
export async function natsReplayGuard(bus: StorePort, replicas = 1): Promise<ReplayGuard> {
  const kv = await bus.bucket(JTI_BUCKET, { history: 1, ttlMs: (MAX_ASSERTION_LIFETIME + 120) * 1000, replicas });
  return {
    async claim(agencyId, jti) {
      // putIfNew, not create: create writes over a delete marker, which would let a deleted jti be used again.
      if (await kv.putIfNew(jtiKey(agencyId, jti), CLAIMED, 'jti store')) return true;
      // Refused either way (junk never grants a jti); a claimed jti holds an empty value, anything else is junk.
      const held = await kv.get(jtiKey(agencyId, jti)).catch(() => null);
      if (held && (held.operation !== 'PUT' || held.value.length !== 0))
        integrity.report(
          undefined,
          'replay-guard',
          kvWhere(JTI_BUCKET, held.key, held.revision),
          held.operation === 'PUT' ? 'not a jti claim' : 'marker',
        );
      return false;
    },
  };
}
