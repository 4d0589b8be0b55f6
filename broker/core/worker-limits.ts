import type { ResourceLimits } from 'node:worker_threads';

/**
 * Heap limits of the worker threads that are off the request path (the background thread, the sealing worker).
 * V8's default young generation let each reach 48 MB; they allocate per notice (messages, headers, JWE strings) and
 * keep little. With the default, the gateway's RSS under load grew from ~240 to ~300 MB when routing moved to its own
 * thread; at 2 MB it stayed at 214-246 MB, with more, shorter scavenges on threads no request waits for (bench, c=64
 * with the router's catch-up; docs/benchmarks.md).
 */
export const OFF_PATH_WORKER_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 2 };
