/**
 * The pure parts of the bench's end-to-end path (issue 23): the notices it seals go to exactly five recipients under
 * the gateway's own policy, the envelope budget per level, and the three figures against their targets.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recipientKeys, type OperationDirectory } from '../broker/agency-client/end-to-end.js';
import type { NoticeHeader } from '../broker/core/notice.js';
import { ensureDemoNetwork } from '../broker/demo/demo-network.js';
import { evaluatePolicy } from '../broker/ingest/policy.js';
import { RegistrySnapshot, type RegistrySeed } from '../broker/registry/model.js';
import { E2E_OPERATION, E2E_RECIPIENTS, e2eNotice } from '../bench/e2e-notices.js';
import {
  E2E_RATE_CAP,
  E2E_RATE_FLOOR,
  e2eRateEstimate,
  e2eSummary,
  e2eSummaryLines,
  natsMsPerNotice,
  type E2eLevel,
} from '../bench/e2e-summary.js';
import { NOTICE_TYPES, SIZES } from '../bench/notices.js';

const level = (o: Partial<E2eLevel>): E2eLevel => ({
  concurrency: 16,
  accepted: 10_000,
  seconds: 4,
  acceptedPerSecond: 2500,
  sustainedPerSecond: 2500,
  p99Ms: 20,
  errors: 0,
  natsCpuPercent: 50,
  ...o,
});

t.test(
  "every notice of the mix, in the bench's operation, goes to 5 recipients under the gateway's policy",
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'liaison-bench-e2e-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    await ensureDemoNetwork(dataDir);
    const seed = JSON.parse(readFileSync(join(dataDir, 'registry.json'), 'utf8')) as RegistrySeed;
    t.notOk(
      seed.operations.some((o) => o.id === E2E_OPERATION.id),
      'not an operation of the demo network (tests rely on it)',
    );
    const registry = RegistrySnapshot.fromSeed({ ...seed, operations: [...seed.operations, E2E_OPERATION] });
    // The member directory as the gateway serves it: each member's encryption keys.
    const directory: OperationDirectory = {
      operation: E2E_OPERATION.id,
      end_to_end: true,
      members: E2E_OPERATION.members.map((id) => {
        const a = seed.agencies.find((x) => x.id === id)!;
        return {
          agency: id,
          country: a.country,
          receives: true,
          encryption_keys: a.keys.filter((k) => k.use === 'enc').map((k) => ({ ...k.jwk, kid: k.kid })),
        };
      }),
    };
    t.equal(E2E_RECIPIENTS, 5);
    for (const type of NOTICE_TYPES)
      for (const size of SIZES) {
        const n = e2eNotice(type, size);
        const origin = (n.origin as { agency: string }).agency;
        const { recipients } = evaluatePolicy(n as unknown as NoticeHeader, origin, registry, new Date(), {
          endToEnd: true,
        });
        t.equal(recipients.length, 5, `${type} ${size}: 5 recipients`);
        t.same(
          recipientKeys(n, directory).map((r) => r.agency),
          recipients,
          `${type} ${size}: sealed for exactly the gateway's recipients`,
        );
      }
  },
);

t.test('a notice whose origin is not a member of the operation is refused before sealing', async (t) => {
  const saved = [...E2E_OPERATION.members];
  E2E_OPERATION.members.splice(0, E2E_OPERATION.members.length, ...saved.filter((m) => m !== 'vn-customs'));
  t.teardown(() => void E2E_OPERATION.members.splice(0, E2E_OPERATION.members.length, ...saved));
  t.throws(() => e2eNotice('seizure-report', 'small'), /origin vn-customs is not in bench-e2e/);
});

t.test('the envelope budget of a level: from the JOSE levels first, then from the previous e2e level', async (t) => {
  const jose = [
    level({ concurrency: 16, acceptedPerSecond: 400 }),
    level({ concurrency: 1, acceptedPerSecond: 200 }),
    level({ concurrency: 4, acceptedPerSecond: 250 }),
  ];
  t.equal(e2eRateEstimate(1, undefined, jose), 600, 'three times the JOSE level at that concurrency');
  t.equal(e2eRateEstimate(8, undefined, jose), 1500, 'the nearest lower JOSE level, scaled by c');
  t.equal(e2eRateEstimate(64, undefined, jose), E2E_RATE_CAP, 'capped');
  t.equal(e2eRateEstimate(2, undefined, jose.slice(0, 1)), 1200, 'no JOSE level as low: the lowest, never scaled down');
  t.equal(e2eRateEstimate(1, undefined, []), E2E_RATE_CAP, 'no JOSE level: the cap');
  t.equal(e2eRateEstimate(16, level({ concurrency: 4, acceptedPerSecond: 700 }), jose), 2800, 'previous e2e, by c');
  t.equal(e2eRateEstimate(4, level({ concurrency: 16, acceptedPerSecond: 700 }), jose), 700, 'never scaled down');
  t.equal(E2E_RATE_FLOOR, 500);
  t.equal(e2eRateEstimate(1, level({ concurrency: 1, acceptedPerSecond: 3 }), jose), E2E_RATE_FLOOR, 'the floor');
});

t.test('the three figures against their targets, met at the bounds', async (t) => {
  const full = [
    level({ concurrency: 4, sustainedPerSecond: 1200 }),
    level({ concurrency: 16, sustainedPerSecond: 2500, acceptedPerSecond: 2700, errors: 1 }),
    level({ concurrency: 64, sustainedPerSecond: 2400 }),
  ];
  const s = e2eSummary(full, level({ p99Ms: 25, errors: 2 }), 2500 / 0.7);
  t.equal(s.peak.concurrency, 16, 'the peak is the sustained rate, not the accepted one');
  t.equal(s.ratios.fullPeakPerSecond, 2500);
  t.equal(s.ratios.fullPeakAcceptedPerSecond, 2700);
  t.equal(s.ratios.fullOverPassThrough, 0.7);
  t.equal(s.ratios.errors, 3);
  t.same(
    Object.values(s.targets).map((x) => x.met),
    [true, true, true],
  );
  const lines = e2eSummaryLines(s, 1250);
  t.notOk(lines.some((l) => l.includes('NOT met')));
  t.match(lines.join('\n'), /no per-thread CPU/);
});

t.test('each figure just past its target is not met', async (t) => {
  const cpu = { main: 0.2, background: 0.1, sealing: 0, other: 0.1 };
  const s = e2eSummary(
    [level({ sustainedPerSecond: 2499, threadCpuMsPerNotice: cpu })],
    level({ p99Ms: 25.01 }),
    2499 / 0.699,
  );
  t.same(
    Object.values(s.targets).map((x) => x.met),
    [false, false, false],
  );
  t.same(s.ratios.peakThreadCpuMsPerNotice, cpu);
  t.equal(e2eSummaryLines(s, 1250).filter((l) => l.includes('NOT met')).length, 3);
  t.match(
    e2eSummaryLines(s, 1250)[3],
    /gateway main 0\.2, background 0\.1, sealing 0, other 0\.1 ms; nats-server 0\.2 ms/,
  );
});

t.test('a level without a sustained rate (no router) counts what was accepted; no level is an error', async (t) => {
  const s = e2eSummary([level({ sustainedPerSecond: undefined, acceptedPerSecond: 900 })], level({}), 1000);
  t.equal(s.ratios.fullPeakPerSecond, 900);
  t.throws(() => e2eSummary([], level({}), 1000), /no e2e level/);
});

t.test("nats-server's CPU per notice: % of a core over the clock, per accepted notice", async (t) => {
  t.equal(natsMsPerNotice(level({ natsCpuPercent: 50, seconds: 4, accepted: 10_000 })), 0.2);
  t.equal(natsMsPerNotice(level({ natsCpuPercent: 50, seconds: 4, accepted: 0 })), 2000, 'none accepted: per 1');
});
