/** A throughput-vs-latency chart as a self-contained SVG (no library). */
export interface Series {
  name: string;
  colour: string;
  points: { x: number; y: number; label: string }[];
  dashed?: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function throughputLatencySvg(opts: {
  title: string;
  subtitle: string;
  series: Series[];
  verticals: { x: number; label: string; colour: string }[];
  xLabel: string;
  yLabel: string;
}): string {
  const W = 760;
  const H = 440;
  const m = { l: 70, r: 30, t: 60, b: 60 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const allX = [...opts.series.flatMap((s) => s.points.map((p) => p.x)), ...opts.verticals.map((v) => v.x)];
  const allY = opts.series.flatMap((s) => s.points.map((p) => p.y));
  const xMax = niceMax(Math.max(...allX) * 1.05);
  const yMax = niceMax(Math.max(...allY) * 1.05);
  const X = (x: number) => m.l + (x / xMax) * pw;
  const Y = (y: number) => m.t + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>`,
  );
  out.push(`<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(opts.subtitle)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const xv = (xMax * i) / 5;
    const yv = (yMax * i) / 5;
    out.push(`<line x1="${X(xv)}" y1="${m.t}" x2="${X(xv)}" y2="${m.t + ph}" stroke="#eee"/>`);
    out.push(`<line x1="${m.l}" y1="${Y(yv)}" x2="${m.l + pw}" y2="${Y(yv)}" stroke="#eee"/>`);
    out.push(`<text x="${X(xv)}" y="${m.t + ph + 16}" text-anchor="middle">${Math.round(xv)}</text>`);
    out.push(`<text x="${m.l - 6}" y="${Y(yv) + 4}" text-anchor="end">${Math.round(yv * 10) / 10}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 18}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  out.push(
    `<text transform="translate(18 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  for (const v of opts.verticals) {
    out.push(
      `<line x1="${X(v.x)}" y1="${m.t}" x2="${X(v.x)}" y2="${m.t + ph}" stroke="${v.colour}" stroke-dasharray="6 4"/>`,
    );
    // Along its own line (rotated), so that labels of lines close together never overlap each other or the legend.
    out.push(
      `<text transform="translate(${X(v.x) + 4} ${m.t + 8}) rotate(90)" fill="${v.colour}" font-size="11">${esc(v.label)}</text>`,
    );
  }
  opts.series.forEach((s, si) => {
    const d = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${X(p.x).toFixed(1)} ${Y(p.y).toFixed(1)}`).join(' ');
    out.push(
      `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`,
    );
    for (const p of s.points) {
      out.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3.5" fill="${s.colour}"/>`);
      out.push(
        `<text x="${(X(p.x) + 6).toFixed(1)}" y="${(Y(p.y) - 6).toFixed(1)}" fill="${s.colour}" font-size="10">${esc(p.label)}</text>`,
      );
    }
    // Legend in the top right corner: the curves rise on the left, the pass-through runs along the bottom.
    out.push(`<rect x="${m.l + pw - 350}" y="${m.t + 10 + si * 18}" width="14" height="3" fill="${s.colour}"/>`);
    out.push(`<text x="${m.l + pw - 330}" y="${m.t + 15 + si * 18}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

interface ChartLevel {
  concurrency: number;
  acceptedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}
/** What the chart reads from a results file (bench/results/latest.json). */
export interface ChartResults {
  machine: { nproc: number; cpuModel: string; node: string };
  full: ChartLevel[];
  ingestOnly: ChartLevel[];
  passThrough: ChartLevel[];
  ratios: { cryptoCeilingPerSecond: number };
  openpgp?: { full: ChartLevel[]; ratios: { cryptoCeilingPerSecond: number } };
  /** The end-to-end path (five recipients a notice), when the run had it. */
  e2e?: { full: ChartLevel[] };
}

/** The bench's chart: p99 (and the full pipeline's p50) against accepted/s, with the crypto ceilings. */
export function benchChartSvg(r: ChartResults): string {
  const p99 = (levels: ChartLevel[]) =>
    levels.map((l) => ({ x: l.acceptedPerSecond, y: l.p99Ms, label: `c=${l.concurrency}` }));
  const ceiling = r.ratios.cryptoCeilingPerSecond;
  const pgpCeiling = r.openpgp?.ratios.cryptoCeilingPerSecond;
  return throughputLatencySvg({
    title: 'Liaison: throughput vs latency (POST /v1/notices, loopback)',
    subtitle: `${r.machine.nproc} cores, ${r.machine.cpuModel}, node ${r.machine.node}; points labelled by concurrency`,
    xLabel: 'accepted notices per second',
    yLabel: 'latency (ms)',
    series: [
      { name: 'full pipeline p99 (gateway with router + checkpointer)', colour: '#c0392b', points: p99(r.full) },
      {
        name: 'full pipeline p50',
        colour: '#e67e22',
        dashed: true,
        points: r.full.map((l) => ({ x: l.acceptedPerSecond, y: l.p50Ms, label: '' })),
      },
      { name: 'ingest-only gateway p99', colour: '#8e44ad', points: p99(r.ingestOnly) },
      { name: 'bare pass-through p99', colour: '#2471a3', points: p99(r.passThrough) },
      ...(r.openpgp ? [{ name: 'OpenPGP full pipeline p99', colour: '#16a085', points: p99(r.openpgp.full) }] : []),
      ...(r.e2e ? [{ name: 'end-to-end (5 recipients) p99', colour: '#7f8c8d', points: p99(r.e2e.full) }] : []),
    ],
    verticals: [
      { x: ceiling, label: `crypto ceiling ${Math.round(ceiling)}/s`, colour: '#27ae60' },
      ...(pgpCeiling !== undefined
        ? [{ x: pgpCeiling, label: `OpenPGP ceiling ${Math.round(pgpCeiling)}/s`, colour: '#16a085' }]
        : []),
    ],
  });
}
