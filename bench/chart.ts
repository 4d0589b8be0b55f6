/**
 * Redraw the bench chart from a results file, without rerunning the bench:
 *   npm run build && node dist/bench/chart.js [bench/results/latest.json]
 * Writes docs/img/bench-throughput-latency.svg (what `npm run bench` writes at the end of a full run).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import { benchChartSvg, type ChartResults } from './svg.js';

const file = process.argv[2] ?? join(repoRoot, 'bench', 'results', 'latest.json');
const results = JSON.parse(readFileSync(file, 'utf8')) as ChartResults;
mkdirSync(join(repoRoot, 'docs', 'img'), { recursive: true });
writeFileSync(join(repoRoot, 'docs', 'img', 'bench-throughput-latency.svg'), benchChartSvg(results));
process.stdout.write(`chart: docs/img/bench-throughput-latency.svg (from ${file})\n`);
