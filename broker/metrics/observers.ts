/**
 * The observers the metrics implement (metrics.ts), told what happened and
 * never content or ids. They live here, beside their one implementation, so
 * that metrics imports neither ingest nor routing; those import these types.
 */

/** The ingest pipeline: how long each step took and whether it passed. */
export interface PipelineObserver {
  step(step: string, seconds: number, ok: boolean): void;
}

/** The router. */
export interface RouterObserver {
  /** One notice routed: `written` deliveries published to DELIVERIES, `skipped` recipients left out. */
  routed(written: number, skipped: number): void;
  /** A notice that cannot be routed (terminated) or a routing attempt that failed (retried). */
  failed(kind: 'unroutable' | 'retry'): void;
}
