/**
 * Summarise a V8 .cpuprofile: self time per function, and inclusive time per
 * module area (ingest, router, checkpointer, nats, jose, fastify...).
 *   node dist/bench/profile-top.js <file.cpuprofile> [top=30]
 * `npm run bench -- --profile DIR` writes the gateway's profile to DIR.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-top <file.cpuprofile> [top]');
const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const selfUs = new Map<number, number>();
p.samples.forEach((s, i) => selfUs.set(s, (selfUs.get(s) ?? 0) + (p.timeDeltas[i] ?? 0)));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const short = (u: string) =>
  u
    .replace(/^.*node_modules\//, '')
    .replace(/^.*\/dist\//, '')
    .replace(/^file:\/\//, '');
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const fn = new Map<string, number>();
const area = new Map<string, number>();
const AREAS: [string, RegExp][] = [
  ['router', /broker\/routing\//],
  ['checkpointer', /broker\/log\/(checkpointer|tiles)/],
  ['ingest', /broker\/ingest\/|adapters\/jose\//],
  ['http', /fastify|find-my-way|light-my-request|broker\/http\//],
  ['nats', /nats\//],
  ['registry', /broker\/registry\//],
];
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  const k = `${n.callFrame.functionName || '(anon)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber}`;
  fn.set(k, (fn.get(k) ?? 0) + us);
  // The innermost broker area on the stack owns this sample.
  let cur: number | undefined = id;
  let owner = n.callFrame.url === '' ? n.callFrame.functionName : 'other';
  while (cur !== undefined) {
    const f = byId.get(cur)!.callFrame.url;
    const hit = AREAS.find(([, re]) => re.test(f));
    if (hit && (hit[0] === 'router' || hit[0] === 'checkpointer' || hit[0] === 'ingest')) {
      owner = hit[0];
      break;
    }
    if (hit && owner === 'other') owner = hit[0];
    cur = parent.get(cur);
  }
  area.set(owner, (area.get(owner) ?? 0) + us);
}
const line = (k: string, us: number) =>
  `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`;
console.log(`total ${(total / 1000).toFixed(0)} ms\n-- by area (innermost of ingest/router/checkpointer on the stack)`);
for (const [k, v] of [...area].sort((a, b) => b[1] - a[1])) console.log(line(k, v));
console.log('-- self time by function');
for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) console.log(line(k, v));
