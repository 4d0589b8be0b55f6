/** A stand-in for broker/background/worker.ts that fails as the test asks (workerData.config.brokerId says how). */
import { parentPort, workerData } from 'node:worker_threads';
import type { BackgroundWorkerData, FromWorker } from '../../broker/background/protocol.js';

const how = (workerData as BackgroundWorkerData).config.brokerId;
const send = (m: FromWorker) => parentPort!.postMessage(m);
if (how === 'fail-at-start') {
  send({ type: 'failed', message: 'no NATS here' });
} else if (how === 'exit-at-start') {
  process.exit(4);
} else if (how === 'deaf') {
  // Starts, then never answers a close (as a thread whose lease release cannot reach NATS).
  send({ type: 'ready', status: { routerLeading: true, routed: 0, checkpointer: null, threads: {} } });
  setInterval(() => undefined, 1000);
} else {
  // 'crash-after-ready': start, report one routed notice, log a line, then die as an uncaught error would.
  send({ type: 'log', lines: [JSON.stringify({ level: 30, msg: 'stand-in started' }) + '\n'] });
  send({ type: 'ready', status: { routerLeading: true, routed: 0, checkpointer: null, threads: {} } });
  send({
    type: 'status',
    status: { routerLeading: true, routed: 1, checkpointer: null, threads: {} },
    events: [
      ['routed', 2, 1],
      ['failed', 'retry'],
    ],
  });
  setTimeout(() => process.exit(3), 100);
}
