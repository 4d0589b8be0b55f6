/**
 * The bare pass-through reference: Fastify taking the envelope as raw text and
 * publishing it to JetStream (two publishes with Msg-Id, acks awaited, like
 * step 7), no crypto, no parsing, no validation. Run as a child of bench/run.ts:
 * `node dist/bench/passthrough.js <nats-url> <port>`; prints "listening <url>".
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { connect, headers, StorageType, RetentionPolicy } from 'nats';

const [natsUrl = 'nats://127.0.0.1:4222', port = '0'] = process.argv.slice(2);
const nc = await connect({ servers: natsUrl, name: 'bench-passthrough' });
const jsm = await nc.jetstreamManager();
for (const [name, subject] of [
  ['BENCH_NOTICES', 'bench.notices'],
  ['BENCH_LOG', 'bench.log'],
] as const) {
  await jsm.streams.add({
    name,
    subjects: [subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: 7200 * 1e9,
  });
}
const js = nc.jetstream({ timeout: 5000 });
const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/jose', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.post('/v1/notices', async (request, reply) => {
  const body = new TextEncoder().encode(request.body as string);
  const id = randomUUID();
  const h = headers();
  h.set('Liaison-Notice-Id', id);
  const a = await js.publish('bench.notices', body, { msgID: id, headers: h });
  const b = await js.publish('bench.log', new TextEncoder().encode(`{"notice_id":"${id}"}`), { msgID: id });
  return reply.code(202).send({ notice_id: id, log_index: b.seq - 1, seq: a.seq });
});
const address = await app.listen({ host: '127.0.0.1', port: Number(port) });
process.stdout.write(`listening ${address}\n`);
const stop = async () => {
  await app.close();
  await nc.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
