/**
 * The sealing worker (a worker thread started by seal-pool.ts): encrypts one
 * notice to each of its JOSE recipients, off the gateway's event loop. Same
 * code as in process (encryptDelivery); only the import cache differs (keyed by
 * key material, as every job brings a fresh copy of the JWKs). It holds no
 * broker key: recipient public keys and the origin's signed bytes only.
 */
import { parentPort } from 'node:worker_threads';
import { encryptDelivery, recipientKeyByMaterial } from './encrypt.js';
import type { SealJob, SealReply } from './seal-pool.js';

if (!parentPort) throw new Error('seal-worker must run as a worker thread');
const port = parentPort;

/** A JWE's ASCII bytes in an ArrayBuffer of their own (never Buffer's shared pool), so that it can be transferred. */
function ownBytes(jwe: string): Uint8Array {
  const bytes = new Uint8Array(jwe.length);
  new TextEncoder().encodeInto(jwe, bytes);
  return bytes;
}

port.on('message', (job: SealJob) => {
  Promise.all(job.recipients.map(async (r) => ownBytes(await encryptDelivery(job.signed, r, job.noticeId, job.format, recipientKeyByMaterial)))).then(
    (bodies) => port.postMessage({ id: job.id, bodies } satisfies SealReply, bodies.map((b) => b.buffer as ArrayBuffer)),
    (e: unknown) => port.postMessage({ id: job.id, error: (e as Error)?.message ?? String(e) } satisfies SealReply),
  );
});
port.postMessage({ ready: true });
