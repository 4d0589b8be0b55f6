/**
 * A leader lease (broker/leader/lease.ts) in the NATS KV bucket `leases`.
 * nats-server 2.9 has no per-key TTL, so the bucket's max age is the lease
 * TTL: a lease that is not renewed ages out of the bucket and anyone may take
 * it.
 *
 *   acquire: kv.create(name)          – succeeds only if nobody holds it
 *   renew:   kv.update(name, rev)     – succeeds only if we still hold it
 *   release: kv.delete(name, rev)     – only our own lease
 *
 * The leader loop (broker/leader/leader-loop.ts) renews it every TTL/3 and
 * stops leading as soon as renew() returns false.
 *
 * All users of the bucket share one TTL (a bucket setting): the first to
 * create the bucket sets it; `ttlMs` reports what the bucket really uses.
 */

import type { KV } from 'nats';

import { isWrongLastSequence, natsUnavailable } from './errors.js';
import { integrity, kvWhere } from '../core/integrity.js';
import type { NatsBus } from './connection.js';
import type { Lease } from '../leader/lease.js';

export const LEASES_BUCKET = 'leases';

const enc = new TextEncoder();

/** The lease `name` in the bucket `leases`, for `holder`; the bucket is created with `ttlMs` if it does not exist. */
export async function openKvLease(
  bus: NatsBus,
  name: string,
  holder: string,
  ttlMs: number,
  replicas = 1,
): Promise<Lease> {
  const kv: KV = await bus.kv(LEASES_BUCKET, { history: 1, ttl: ttlMs, replicas });
  const status = await kv.status();
  const bucketTtl = status.ttl > 0 ? status.ttl : ttlMs;
  let revision = 0;
  let held = false;
  const value = () => enc.encode(JSON.stringify({ holder, at: new Date().toISOString() }));
  // A refused acquire: someone holds the lease, or junk sits under its key. Junk holds nothing for longer than the TTL (the
  // bucket's max age ages it out like any lease); it is reported once per revision.
  let reportedJunk = 0;
  const checkHolder = async () => {
    const e = await kv.get(name).catch(() => null);
    if (!e || e.operation !== 'PUT' || e.revision === reportedJunk) return;
    let ok: boolean;
    try {
      const v = JSON.parse(new TextDecoder().decode(e.value)) as { holder?: unknown; at?: unknown };
      ok = typeof v === 'object' && v !== null && typeof v.holder === 'string' && typeof v.at === 'string';
    } catch {
      ok = false;
    }
    if (ok) return;
    reportedJunk = e.revision;
    integrity.report(undefined, 'leases', kvWhere(LEASES_BUCKET, name, e.revision), 'not a lease');
  };
  const unavailable = (e: unknown, what: string) => natsUnavailable(e, `lease ${name} ${what}`);

  const lease: Lease = {
    name,
    holder,
    ttlMs: bucketTtl,
    get held() {
      return held;
    },
    async acquire() {
      if (held) return lease.renew();
      try {
        revision = await kv.create(name, value());
        held = true;
      } catch (e) {
        if (!isWrongLastSequence(e)) throw unavailable(e, 'acquire');
        held = false;
        await checkHolder();
      }
      return held;
    },
    async renew() {
      if (!held) return false;
      try {
        revision = await kv.update(name, value(), revision);
      } catch (e) {
        held = false;
        if (!isWrongLastSequence(e)) throw unavailable(e, 'renew');
      }
      return held;
    },
    async release() {
      if (!held) return;
      held = false;
      try {
        await kv.delete(name, { previousSeq: revision });
      } catch {
        // Already expired or taken: nothing of ours to release.
      }
    },
  };
  return lease;
}
