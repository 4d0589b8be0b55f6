/**
 * The sealing worker (a worker thread started by seal-pool.ts): encrypts one
 * notice to each of its JOSE recipients, off the gateway's event loop. Same
 * code as in process (encryptDeliveries); only the import cache differs (keyed by
 * key material, as every job brings a fresh copy of the JWKs). It holds no
 * broker key: recipient public keys and the origin's signed bytes only.
 */
import { parentPort } from 'node:worker_threads';
import { currentThreadId } from '../../broker/metrics/thread-cpu.js';
import { encryptDeliveries, recipientKeyByMaterial } from './encrypt.js';
import type { SealJob, SealReply } from './seal-pool.js';

if (!parentPort) throw new Error('seal-worker must run as a worker thread');
const port = parentPort;

port.on('message', (job: SealJob) => {
  // Each JWE's bytes have an ArrayBuffer of their own (encryptDeliveries): transferred, not copied.
  encryptDeliveries(job.signed, job.recipients, job.noticeId, job.format, recipientKeyByMaterial).then(
    (bodies) =>
      port.postMessage(
        { id: job.id, bodies } satisfies SealReply,
        bodies.map((b) => b.buffer as ArrayBuffer),
      ),
    (e: unknown) => port.postMessage({ id: job.id, error: (e as Error)?.message ?? String(e) } satisfies SealReply),
  );
});
port.postMessage({ ready: true, tid: currentThreadId() });
