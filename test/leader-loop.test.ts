/**
 * The leader loop (broker/leader/leader-loop.ts) on an in-memory lease: one
 * leader at a time, failover when the lease is lost, renewals one at a time,
 * a hung renewal ends the term before the TTL, close() releases.
 */
import t from 'tap';
import { pino } from 'pino';
import { LeaderLoop, type LeaderTerm } from '../broker/leader/leader-loop.js';
import type { Lease } from '../broker/leader/lease.js';
import { sleep } from '../broker/core/sleep.js';

const TTL = 300;
const logger = pino({ level: 'silent' });

/** One lease slot shared by every holder, as the KV bucket is: a lease not renewed within the TTL lapses. */
class Slot {
  holder: string | undefined;
  expires = 0;
  renewing = 0;
  maxRenewing = 0;
  /** This holder's renewals never answer (NATS away for it). */
  hangFor: string | undefined;
  take(holder: string): boolean {
    if (this.holder !== undefined && this.holder !== holder && Date.now() < this.expires) return false;
    this.holder = holder;
    this.expires = Date.now() + TTL;
    return true;
  }
}

function memLease(slot: Slot, holder: string): Lease {
  let held = false;
  const lease: Lease = {
    name: 'test',
    holder,
    ttlMs: TTL,
    get held() {
      return held;
    },
    async acquire() {
      if (slot.hangFor === holder) throw new Error('NATS away');
      held = slot.take(holder);
      return held;
    },
    async renew() {
      slot.renewing++;
      slot.maxRenewing = Math.max(slot.maxRenewing, slot.renewing);
      try {
        await sleep(5);
        if (slot.hangFor === holder) await new Promise(() => undefined);
        held = held && slot.holder === holder && slot.take(holder);
        return held;
      } finally {
        slot.renewing--;
      }
    },
    async release() {
      if (slot.hangFor === holder) return;
      if (held && slot.holder === holder) slot.holder = undefined;
      held = false;
    },
  };
  return lease;
}

/** Resolves when `signal` aborts (at once if it has). */
const termEnded = (signal: AbortSignal) =>
  new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));

const until = async (what: string, ok: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
};

/** Work that counts the instances leading at once and ends when its term does. */
function leadingCounter() {
  const c = { now: 0, max: 0, terms: 0 };
  const work = async (term: LeaderTerm) => {
    c.now++;
    c.terms++;
    c.max = Math.max(c.max, c.now);
    await termEnded(term.signal);
    c.now--;
  };
  return { c, work };
}

t.test('one leader at a time; the other takes over when the lease is lost', async (t) => {
  const slot = new Slot();
  const { c, work } = leadingCounter();
  const a = new LeaderLoop({ key: 'test', holder: 'a', ttlMs: TTL, logger, open: async () => memLease(slot, 'a') });
  const b = new LeaderLoop({ key: 'test', holder: 'b', ttlMs: TTL, logger, open: async () => memLease(slot, 'b') });
  a.start(work);
  await until('a leads', () => a.held);
  b.start(work);
  await sleep(TTL);
  t.notOk(b.held, 'b does not lead while a holds the lease');
  // NATS away for a: its renewals never answer, its lease lapses after the TTL and b takes it.
  slot.hangFor = 'a';
  await until('a steps down', () => !a.held);
  await until('b leads', () => b.held, TTL * 5);
  t.equal(slot.holder, 'b');
  t.equal(c.max, 1, 'never two leaders');
  await Promise.all([a.close(), b.close()]);
  t.equal(slot.holder, undefined, 'closing released the lease');
});

t.test('close() ends the term and releases, so another instance leads at once', async (t) => {
  const slot = new Slot();
  const { c, work } = leadingCounter();
  const a = new LeaderLoop({ key: 'test', holder: 'a', ttlMs: TTL, logger, open: async () => memLease(slot, 'a') });
  a.start(work);
  await until('a leads', () => a.held);
  await a.close();
  t.equal(c.now, 0, 'the work ended');
  t.notOk(a.held);
  t.equal(slot.holder, undefined, 'released');
  const b = new LeaderLoop({ key: 'test', holder: 'b', ttlMs: TTL, logger, open: async () => memLease(slot, 'b') });
  b.start(work);
  await until('b leads', () => b.held);
  await b.close();
});

t.test('renewals run one at a time, the term renew() included', async (t) => {
  const slot = new Slot();
  const a = new LeaderLoop({ key: 'test', holder: 'a', ttlMs: TTL, logger, open: async () => memLease(slot, 'a') });
  const results: boolean[] = [];
  a.start(async (term) => {
    for (let i = 0; i < 20 && !term.signal.aborted; i++) {
      results.push(await term.renew());
      await sleep(7);
    }
    await termEnded(term.signal);
  });
  await until('20 renewals', () => results.length === 20);
  t.ok(results.every(Boolean), 'every renewal succeeded');
  t.equal(slot.maxRenewing, 1, 'never two renewals at once');
  await a.close();
});

t.test('a renewal that never answers ends the term within 2/3 of the TTL and more', async (t) => {
  const slot = new Slot();
  let ended = 0;
  const a = new LeaderLoop({ key: 'test', holder: 'a', ttlMs: TTL, logger, open: async () => memLease(slot, 'a') });
  a.start(async (term) => {
    await termEnded(term.signal);
    ended = Date.now();
  });
  await until('a leads', () => a.held);
  const hungAt = Date.now();
  slot.hangFor = 'a';
  await until('the term ended', () => ended > 0, TTL * 3);
  t.ok(ended - hungAt < TTL, `stepped down ${ended - hungAt} ms after renewals stopped answering, before the TTL`);
  await a.close();
});

t.test('a failing open is retried; a failing work steps down and leads again', async (t) => {
  const slot = new Slot();
  let opens = 0;
  let terms = 0;
  const a = new LeaderLoop({
    key: 'test',
    holder: 'a',
    ttlMs: TTL,
    logger,
    open: async () => {
      if (++opens < 3) throw new Error('NATS away');
      return memLease(slot, 'a');
    },
  });
  a.start(async () => {
    terms++;
    throw new Error('work failed');
  });
  await until('two terms', () => terms >= 2);
  t.equal(opens, 3, 'opened once it could, and kept the lease object');
  await a.close();
  t.equal(slot.holder, undefined, 'released after the failed work');
});
