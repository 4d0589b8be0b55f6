import t from 'tap';
import { STREAMS } from '../broker/nats/streams.js';
import { sampleNotice, startTestGateway } from './helpers/gateway.js';
import { startTestNats } from './helpers/nats.js';

const nats = await startTestNats(t);
const g = await startTestGateway(t, nats.url, { publishTimeoutMs: 1000, retryAfterSeconds: 3 });
const notice = () =>
  sampleNotice('seizure-report', {
    operation: 'mekong-dragon-6',
    origin: { country: 'VN', agency: 'vn-customs' },
    addressees: ['TH'],
    tlp: 'GREEN',
  });

t.test('NATS down: 503 with Retry-After and no receipt; after recovery the retry succeeds, once', async (t) => {
  const before = await g.post((await g.seal(notice(), 'vn-customs')).jwe);
  t.equal(before.status, 202);

  await nats.stop();
  const { jwe } = await g.seal(notice(), 'vn-customs');
  const down = await g.post(jwe);
  t.equal(down.status, 503);
  t.equal(down.json.code, 'unavailable');
  t.equal(down.headers['retry-after'], '3');
  t.notOk(down.json.receipt, 'no receipt while NATS is down');
  const ready = await g.gw.app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 503, '/readyz says not ready');
  t.equal((await g.gw.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, '/healthz still answers');

  const restarted = await nats.restart();
  let res = down;
  const deadline = Date.now() + 20_000;
  while (res.status !== 202 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    res = await g.post(jwe);
  }
  t.equal(res.status, 202, 'the same envelope is accepted after recovery, without a gateway restart');
  const again = await g.post(jwe);
  t.equal(again.json.receipt, res.json.receipt, 'and a further retry is idempotent');
  const info = await g.gw.bus.jsm.streams.info(STREAMS.log);
  t.equal(info.state.messages, 2, 'exactly the two accepted notices are in the log');
  t.equal(res.json.log_index, 1);
  await restarted.stop();
});
