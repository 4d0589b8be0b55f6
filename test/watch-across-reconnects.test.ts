import t from 'tap';
import { watchAcrossReconnects, type NatsBus } from '../broker/nats/connection.js';

/** Only the reconnect signal of a bus: what watchAcrossReconnects uses (the real one is exercised in key-admin-outage.test.ts). */
function reconnects() {
  const listeners = new Set<() => void>();
  const bus = {
    onReconnect: (fn: () => void) => (listeners.add(fn), () => listeners.delete(fn)),
  } as unknown as NatsBus;
  return { bus, fire: () => listeners.forEach((fn) => fn()), count: () => listeners.size };
}
const settle = () => new Promise((r) => setTimeout(r, 10));

t.test(
  'a watch is started now and again after each reconnect, the previous one stopped; a failed restart keeps the running one',
  async (t) => {
    const { bus, fire, count } = reconnects();
    const stopped: number[] = [];
    const errors: string[] = [];
    let n = 0;
    let fail = false;
    const stop = await watchAcrossReconnects(
      bus,
      async () => {
        if (fail) throw new Error('NATS away again');
        const id = ++n;
        return () => void stopped.push(id);
      },
      (e) => void errors.push(e.message),
    );
    t.equal(n, 1, 'started at once');
    fire();
    await settle();
    t.equal(n, 2, 'started again after a reconnect');
    t.same(stopped, [1], 'the first watch stopped');
    fail = true;
    fire();
    await settle();
    t.same(errors, ['NATS away again'], 'a failed restart is reported');
    t.same(stopped, [1], 'and the running watch is kept');
    fail = false;
    fire();
    await settle();
    t.equal(n, 3, 'the next reconnect restarts it');
    t.same(stopped, [1, 2]);
    stop();
    t.same(stopped, [1, 2, 3], 'stop ends the current watch');
    t.equal(count(), 0, 'and no reconnect starts another');
  },
);
