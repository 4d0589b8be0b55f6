/**
 * JOSE deliveries sealed on a worker thread. A notice's fan-out (content
 * encryption, and per recipient a key agreement, KDF and key wrap) was the
 * largest share of the gateway's main-thread time under load (bench
 * --profile); on the worker it runs beside ingest instead of in its way. One
 * job per notice: the signed bytes and the recipients' public JWKs go in, one
 * JWE per recipient comes out, in the same order, all sharing one content
 * encryption (delivery-jwe.ts).
 *
 * Failure is never silent: a job that fails, or a worker that dies, rejects
 * the pending jobs (the router naks and retries the notice); the next job
 * starts a new worker. Where no worker can be started at all (a runtime
 * without the compiled worker file), sealing runs in process, with the same code.
 */
import { Worker } from 'node:worker_threads';
import type { RegistryJwk } from '../../broker/registry/model.js';
import { encryptDeliveries } from './encrypt.js';
import { OFF_PATH_WORKER_LIMITS } from '../../broker/core/heap-limits.js';

export interface SealJob {
  id: number;
  signed: Uint8Array;
  noticeId: string;
  /** The origin's envelope format (names the JWE's cty). */
  format: string;
  recipients: { kid: string; jwk: RegistryJwk }[];
}

/**
 * `bodies`: each JWE as its ASCII bytes, in an ArrayBuffer of its own that the worker transfers: the router publishes
 * bytes, and strings crossing threads were copied twice and landed on the router's heap (about 35 kB a notice, which
 * its small young generation then scavenged).
 */
export type SealReply =
  { id: number; bodies: Uint8Array[]; error?: undefined } | { id: number; error: string; bodies?: undefined };

interface Pending {
  job: SealJob;
  resolve: (bodies: Uint8Array[]) => void;
  reject: (e: Error) => void;
}

const sealInProcess = (job: Omit<SealJob, 'id'>) =>
  encryptDeliveries(job.signed, job.recipients, job.noticeId, job.format);

const workerUrl = () =>
  new URL(import.meta.url.endsWith('.ts') ? './seal-worker.ts' : './seal-worker.js', import.meta.url);

export class DeliverySealer {
  #worker: Worker | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 0;
  #inProcess = false;
  #closed = false;
  #threadId: number | undefined;

  /** The sealing worker's thread id while it runs (Linux; for the per-thread CPU metric), else undefined. */
  get threadId(): number | undefined {
    return this.#worker ? this.#threadId : undefined;
  }

  /** One JWE (flattened JSON serialization) per recipient, in order, as its ASCII bytes. */
  seal(
    signed: Uint8Array,
    recipients: { kid: string; jwk: RegistryJwk }[],
    noticeId: string,
    format: string,
  ): Promise<Uint8Array[]> {
    if (recipients.length === 0) return Promise.resolve([]);
    const worker = this.#inProcess || this.#closed ? undefined : this.#ensureWorker();
    if (!worker) return sealInProcess({ signed, recipients, noticeId, format });
    // A NATS message's data is a view into a larger read buffer (and a Buffer's slice() is a view too): post a copy
    // in an ArrayBuffer of its own, and transfer that (not cloned again); the caller's bytes stay intact.
    const copy = new Uint8Array(signed.byteLength);
    copy.set(signed);
    const job: SealJob = {
      id: this.#nextId++,
      signed: copy,
      noticeId,
      format,
      recipients: recipients.map((r) => ({ kid: r.kid, jwk: r.jwk })),
    };
    return new Promise<Uint8Array[]>((resolve, reject) => {
      // Kept with the caller's own bytes, for a retry in process should the worker never start (the posted copy is gone).
      this.#pending.set(job.id, { job: { ...job, signed }, resolve, reject });
      worker.postMessage(job, [copy.buffer]);
      // Referenced only while a job is pending: an idle worker never holds the process open.
      if (this.#pending.size === 1) worker.ref();
    });
  }

  /** Stop the worker; pending jobs are rejected. */
  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = undefined;
    this.#failAll(new Error('delivery sealer closed'));
    w?.removeAllListeners().on('error', () => undefined);
    if (w) await w.terminate();
  }

  #ensureWorker(): Worker | undefined {
    if (this.#worker) return this.#worker;
    let w: Worker;
    try {
      w = new Worker(workerUrl(), { resourceLimits: OFF_PATH_WORKER_LIMITS });
    } catch {
      this.#inProcess = true;
      return undefined;
    }
    w.unref();
    this.#threadId = undefined;
    // Ready once its modules are loaded (the worker's first message), not merely started.
    let online = false;
    w.on('message', (r: SealReply | { ready: true; tid?: number }) => {
      if ('ready' in r) {
        this.#threadId = r.tid;
        return void (online = true);
      }
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (this.#pending.size === 0) w.unref();
      if (r.error !== undefined) p.reject(new Error(`sealing failed: ${r.error}`));
      else p.resolve(r.bodies);
    });
    const gone = (e: Error) => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      if (!online && !this.#closed) {
        // The worker could not even start (no compiled worker file, e.g. sources run through a loader): seal in process from now on.
        this.#inProcess = true;
        const pending = [...this.#pending.values()];
        this.#pending.clear();
        for (const p of pending) sealInProcess(p.job).then(p.resolve, p.reject);
        return;
      }
      this.#failAll(e);
    };
    w.on('error', (e) => gone(e));
    w.on('exit', (code) => gone(new Error(`sealing worker exited (${code})`)));
    this.#worker = w;
    return w;
  }

  #failAll(e: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(e);
  }
}
