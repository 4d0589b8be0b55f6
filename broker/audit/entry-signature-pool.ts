/**
 * Every entry's gateway signature checked on all cores: one Ed25519
 * verification per entry is most of an audit's CPU time, and the
 * verifications are independent. The entries are cut into chunks; worker
 * threads (one per core but one) and this thread each take the next chunk
 * until none is left, so a busy core takes fewer; or, when this thread has
 * other work (verify-all-cores.ts), one worker per core takes them all.
 * A worker that fails hands its chunk back to this thread: the outcome never
 * depends on whether a worker ran.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { JWK } from 'jose';

import { OFF_PATH_WORKER_LIMITS } from '../core/heap-limits.js';
import { EntrySignatureVerifier } from '../log/entry-signature.js';
import { checkEntrySignature, type EntrySignatureOutcome } from './entry-signature-check.js';
import type { EntrySignatureJob } from './entry-signature-worker.js';

export interface EntrySignaturePoolOptions {
  /** Threads in all, this one included (default: the cores available). */
  threads?: number;
  /** Entries per chunk handed out. */
  chunk?: number;
  /** Whether this thread takes chunks too (default); if not, `threads` workers take them all. */
  shareThisThread?: boolean;
}

type Entries = readonly { bytes: Uint8Array; signature?: string | undefined }[];
interface Chunk {
  start: number;
  end: number;
}

const workerUrl = () =>
  new URL(
    import.meta.url.endsWith('.ts') ? './entry-signature-worker.ts' : './entry-signature-worker.js',
    import.meta.url,
  );
const yieldToEvents = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One outcome per entry, in order: the same as checkEntrySignature on each, in this thread. */
export async function checkEntrySignatures(
  keys: readonly JWK[],
  entries: Entries,
  options: EntrySignaturePoolOptions = {},
): Promise<EntrySignatureOutcome[]> {
  const chunk = Math.max(1, options.chunk ?? 1024);
  const threads = Math.max(1, options.threads ?? availableParallelism());
  const out = new Array<EntrySignatureOutcome>(entries.length);
  const pending: Chunk[] = [];
  for (let start = 0; start < entries.length; start += chunk)
    pending.push({ start, end: Math.min(entries.length, start + chunk) });
  const verifier = new EntrySignatureVerifier(keys);
  const inThread = (c: Chunk) => {
    for (let i = c.start; i < c.end; i++)
      out[i] = checkEntrySignature(verifier, entries[i]!.bytes, entries[i]!.signature);
  };

  const share = options.shareThisThread ?? true;
  const workerCount = pending.length > 1 || !share ? threads - (share ? 1 : 0) : 0;
  const workers = Array.from({ length: workerCount }, () => runWorker(keys, entries, pending, out));
  if (share)
    for (let c = pending.shift(); c; c = pending.shift()) {
      inThread(c);
      // Let the workers' answers in, so each gets its next chunk while this thread works on.
      await yieldToEvents();
    }
  // Chunks a failed worker handed back, and any no worker took (none could start).
  const left = (await Promise.all(workers)).flat().concat(pending.splice(0));
  for (const c of left) inThread(c);
  return out;
}

/** A worker taking chunks from `pending` until none is left; resolves with the chunk it held if it failed. */
function runWorker(
  keys: readonly JWK[],
  entries: Entries,
  pending: Chunk[],
  out: EntrySignatureOutcome[],
): Promise<Chunk[]> {
  return new Promise((resolve) => {
    let held: Chunk | undefined;
    let done = false;
    let w: Worker;
    const finish = (handBack: Chunk[]) => {
      if (done) return;
      done = true;
      w.removeAllListeners();
      w.on('error', () => undefined);
      void w.terminate();
      resolve(handBack);
    };
    const next = () => {
      held = pending.shift();
      if (!held) return finish([]);
      const job: EntrySignatureJob = { keys, entries: entries.slice(held.start, held.end) };
      try {
        w.postMessage(job);
      } catch {
        // Not cloneable (a caller's key object with methods): this thread checks it.
        finish([held]);
      }
    };
    try {
      w = new Worker(workerUrl(), { resourceLimits: OFF_PATH_WORKER_LIMITS });
    } catch {
      return resolve([]);
    }
    w.on('message', (m: EntrySignatureOutcome[] | { ready: true }) => {
      if (!Array.isArray(m)) return;
      const c = held!;
      if (m.length !== c.end - c.start) return finish([c]);
      for (let i = 0; i < m.length; i++) out[c.start + i] = m[i]!;
      next();
    });
    const gone = () => finish(held ? [held] : []);
    w.on('error', gone);
    w.on('exit', gone);
    // Its first chunk now, queued until it listens: this thread may be too busy to hand it one when it starts.
    next();
  });
}
