import t from 'tap';
import { summariseBins } from '../bench/steadiness.js';
import { clusters, medianGap } from '../bench/stats.js';

t.test('a steady machine: no episode, nothing lost', async (t) => {
  const s = summariseBins(Array.from({ length: 100 }, (_, i) => 1000 + (i % 3)));
  t.equal(s.episodes.length, 0);
  t.equal(s.lostFraction, 0);
  t.equal(s.slowBinFraction, 0);
  t.equal(s.medianPerBin, 1001);
});

t.test('slow bins close together are one episode; far apart, two', async (t) => {
  const bins = Array.from({ length: 200 }, () => 1000);
  // 20 ms bins: an episode at 1.00 s (bins 50-54, with one normal bin inside), another at 3.00 s (bins 150-151).
  for (const [i, v] of [
    [50, 300],
    [51, 100],
    [52, 1000],
    [53, 500],
    [54, 790],
    [150, 200],
    [151, 600],
  ] as const)
    bins[i] = v;
  const s = summariseBins(bins);
  t.same(s.episodes, [
    { atSeconds: 1, ms: 100, lowestRatio: 0.1 },
    { atSeconds: 3, ms: 40, lowestRatio: 0.2 },
  ]);
  t.equal(s.slowBinFraction, 0.03, '6 of 200 bins under 0.8');
  // Lost: (700 + 900 + 500 + 210 + 800 + 400) / (1000 × 200)
  t.equal(s.lostFraction, 0.018);
});

t.test('no bins', async (t) => {
  t.same(summariseBins([]), { medianPerBin: 0, lostFraction: 0, slowBinFraction: 0, episodes: [] });
});

t.test('clusters and the median gap between them', async (t) => {
  t.same(clusters([], 200), []);
  t.same(clusters([0, 50, 260, 1500, 1600, 1800, 3100], 200), [[0, 50], [260], [1500, 1600, 1800], [3100]]);
  t.equal(medianGap([[0, 50], [260], [1500, 1600], [3100]]), 1240, 'gaps 260, 1240, 1600');
  t.equal(medianGap([[5]]), null);
});
