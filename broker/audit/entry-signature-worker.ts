/**
 * Worker thread of entry-signature-pool.ts: checks a slice of the entries'
 * gateway signatures against the broker key history and answers with one
 * outcome per entry, in order.
 */

import { parentPort } from 'node:worker_threads';
import type { JWK } from 'jose';

import { EntrySignatureVerifier } from '../log/entry-signature.js';
import { checkEntrySignature, type EntrySignatureOutcome } from './entry-signature-check.js';

export interface EntrySignatureJob {
  keys: readonly JWK[];
  entries: readonly { bytes: Uint8Array; signature?: string | undefined }[];
}

const port = parentPort;
if (port) {
  port.on('message', (job: EntrySignatureJob) => {
    const verifier = new EntrySignatureVerifier(job.keys);
    const outcomes: EntrySignatureOutcome[] = job.entries.map((e) =>
      checkEntrySignature(verifier, e.bytes, e.signature),
    );
    port.postMessage(outcomes);
  });
  port.postMessage({ ready: true });
}
