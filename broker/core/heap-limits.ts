import { getHeapStatistics } from 'node:v8';
import type { ResourceLimits } from 'node:worker_threads';

/**
 * The old generation's limit of the gateway's main thread, in MB.
 *
 * Besides being a ceiling, the limit sets how far V8 lets the old generation
 * grow past what survived the last full GC before it collects again: up to 4×
 * when the limit is 2 GB or more (V8's heap controller; on a 24 GB machine the
 * default limit is ~4 GB), 1.3-2× below that, scaled with the limit. Under load
 * the main thread's old generation, ~35-40 MB live, grew to 70-100 MB between
 * full GCs with the default, and the gateway's peak RSS came out anywhere from
 * 190 to 309 MB by when those GCs fell; with 1 GB the old generation stayed near
 * 40 MB and the peak at 171-207 MB, for CPU per notice within the machine's
 * noise (`node dist/bench/ab.js --node-args base: base=... new=dist`,
 * docs/benchmarks.md). 1 GB is far above what the gateway keeps and 4× the RSS
 * it is meant to stay under; to refuse work before any limit, set `maxHeapUsedBytes`.
 */
export const OLD_GENERATION_MB = 1024;

/**
 * The gateway process's own V8 flags. The main thread's heap is sized when the
 * process starts, so they must be on node's command line: `npm start`
 * (package.json) and the image's CMD (Dockerfile) carry them, and the bench
 * starts its gateways with them; test/docker.test.ts checks the start script and the CMD against
 * this, and the gateway warns at start (`heap-limit`) when it was started without them.
 */
export const GATEWAY_NODE_ARGS: readonly string[] = [`--max-old-space-size=${OLD_GENERATION_MB}`];

/**
 * Heap limits of the worker threads that are off the request path (the background thread, the sealing worker).
 * V8's default young generation let each reach 48 MB; they allocate per notice (messages, headers, JWE strings) and
 * keep little. With the default, the gateway's RSS under load grew from ~240 to ~300 MB when routing moved to its own
 * thread; at 2 MB it stayed at 214-246 MB, with more, shorter scavenges on threads no request waits for (bench, c=64
 * with the router's catch-up; docs/benchmarks.md). Their old generation keeps V8's default limit: giving them the main
 * thread's 1 GB as well lowered no peak in the A/B (their old generations hold 13-17 MB), and with a 2 MB young
 * generation they promote much of what they allocate, so a tighter growth factor would only mean more full GCs.
 */
export const OFF_PATH_WORKER_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 2 };

/** This process's heap limit (MB) and whether it was started with GATEWAY_NODE_ARGS' limit (else V8's default: ~4 GB on 24 GB). */
export function heapLimitCheck(): { heapLimitMb: number; asIntended: boolean } {
  const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
  // heap_size_limit is the old generation's limit plus the young generation's (a few tens of MB).
  return { heapLimitMb, asIntended: heapLimitMb >= OLD_GENERATION_MB && heapLimitMb < OLD_GENERATION_MB + 256 };
}
