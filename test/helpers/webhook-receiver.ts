import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { webhookConsumer } from '../../adapters/webhook/index.js';
import type { NatsBus } from '../../broker/nats/connection.js';
import { STREAMS } from '../../broker/nats/streams.js';
import { waitFor } from './wait.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ReceivedRequest {
  headers: IncomingMessage['headers'];
  body: string;
}

/** An agency's webhook receiver on loopback: records every request (headers, body) and answers with `answer` (default 204). Closed at teardown. */
export async function webhookReceiver(
  t: Teardown,
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void = (_n, _q, res) => (
    res.writeHead(204),
    res.end()
  ),
  path = '/hook',
) {
  const got: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(got.length, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  return { got, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, server };
}

/** Wait until the webhook deliverer has made its durable consumer for `agency` (it does so on a registry change). */
export async function webhookConsumerReady(bus: NatsBus, agency: string, ms = 15_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        await bus.jsm.consumers.info(STREAMS.deliveries, webhookConsumer(agency));
        return true;
      } catch {
        return undefined;
      }
    },
    `the webhook consumer of ${agency}`,
    ms,
  );
}
