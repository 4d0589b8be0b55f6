/**
 * A worker thread of the load generator that seals a share of a level's end-to-end envelopes
 * (bench/e2e-notices.ts, sealE2eEnvelopesInWorkers): sealing is the client's cost, paid before the clock starts,
 * and one thread seals only ~250 a second here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { OperationDirectory } from '../broker/agency-client/end-to-end.js';
import { sealE2eEnvelopes } from './e2e-notices.js';

const { count, dataDir, directory } = workerData as { count: number; dataDir: string; directory: OperationDirectory };
parentPort!.postMessage(await sealE2eEnvelopes(count, dataDir, directory, 4));
