import type { KV } from 'nats';
import { integrity, kvWhere } from '../core/integrity.js';
import type { NatsBus } from '../nats/connection.js';
import { isWrongLastSequence, natsUnavailable } from '../nats/errors.js';
import { jtiKey, MAX_ASSERTION_LIFETIME, type ReplayGuard } from './client-assertion.js';

export const JTI_BUCKET = 'assertion-jti';

/**
 * jti replay protection shared by every gateway: a KV bucket whose entries
 * expire after the longest assertion lifetime (nats-server 2.9 has bucket TTL,
 * not per-key TTL). `create` is atomic, so two gateways cannot both accept a jti.
 */
export async function natsReplayGuard(bus: NatsBus, replicas = 1): Promise<ReplayGuard> {
  const kv: KV = await bus.kv(JTI_BUCKET, { history: 1, ttl: (MAX_ASSERTION_LIFETIME + 120) * 1000, replicas });
  return {
    async claim(agencyId, jti) {
      try {
        // put with previousSeq 0, not kv.create: create writes over a delete marker, which would let a deleted jti be used again.
        await kv.put(jtiKey(agencyId, jti), new Uint8Array(0), { previousSeq: 0 });
        return true;
      } catch (e) {
        if (isWrongLastSequence(e)) {
          // Refused either way (junk never grants a jti); a claimed jti holds an empty value, anything else is junk.
          const held = await kv.get(jtiKey(agencyId, jti)).catch(() => null);
          if (held && (held.operation !== 'PUT' || held.value.length !== 0)) integrity.report(undefined, 'replay-guard', kvWhere(JTI_BUCKET, held.key, held.revision), held.operation === 'PUT' ? 'not a jti claim' : 'marker');
          return false;
        }
        throw natsUnavailable(e, 'jti store');
      }
    },
  };
}
