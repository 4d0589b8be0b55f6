import type { BrokerSigningKey } from '../keys/broker-keys.js';
import type { NoticeLogEntry } from './entry.js';

/**
 * What ingest needs of the log (step 7): store a notice and its entry, answer
 * with the entry's position. Implemented over JetStream by
 * notice-writer.ts (natsLogWriter); kept apart from it so the pipeline
 * imports no transport.
 */
export interface LogWriter {
  append(input: StoreInput): Promise<StoreResult>;
}

export interface StoreInput {
  signed: Uint8Array;
  /** The entry to write if this notice is new; received_at is the broker's clock. */
  entry: NoticeLogEntry;
  /** The broker's current signing key: signs the entry (broker/log/entry-signature.ts). */
  signer: BrokerSigningKey;
}

export interface StoreResult {
  /** 0-based position in the log (LOG stream sequence - 1): the Merkle leaf index. */
  logIndex: number;
  /** The entry as stored: on a retry, the original one (original received_at). */
  entry: NoticeLogEntry;
  /** True when nothing new was written (an idempotent retry). */
  duplicate: boolean;
}
