/**
 * A leader lease: at most one holder at a time, lost unless renewed within its
 * TTL. The leader loop (leader-loop.ts) drives one; broker/nats/kv-lease.ts is
 * the implementation in a NATS KV bucket.
 */
export interface Lease {
  readonly name: string;
  readonly holder: string;
  /** The TTL in force, in ms: a lease not renewed within it is lost. */
  readonly ttlMs: number;
  /** Take the lease if nobody holds it. True when we hold it afterwards. */
  acquire(): Promise<boolean>;
  /** Extend our lease. False when it was lost (expired, taken over) – stop leading. */
  renew(): Promise<boolean>;
  /** Give the lease up (only if still ours). */
  release(): Promise<void>;
  /** Whether we believe we hold it (last acquire/renew succeeded). */
  readonly held: boolean;
}

/** Where leases come from (the NATS KV bucket `leases`: broker/nats/kv-lease.ts), for code that must not know. */
export interface LeasePort {
  /** The lease `name` for `holder`; the store is set up for `ttlMs` and `replicas` if it is not yet. */
  openLease(name: string, holder: string, ttlMs: number, replicas?: number): Promise<Lease>;
}
