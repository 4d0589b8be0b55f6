/**
 * docs/architecture.md's folder map is the code's layering, checked against
 * the imports: every source folder has a row, and a folder imports only
 * folders in its own row or the rows above it. A new folder without a row,
 * or an import that reaches down the table, fails with the edge that does.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import { importGraph, sourceFiles, type Import } from './helpers/import-graph.js';

const ROOTS = ['broker', 'adapters', 'certs'];

/** The first cell of each row of the "Where the code is" table: the folders it names, e.g. `broker/core/`. */
export function folderRows(markdown: string): string[][] {
  const section = markdown.split(/^## Where the code is$/m)[1]?.split(/^#{2,3} /m)[0] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => [...(line.split('|')[1] ?? '').matchAll(/`([^`]+\/)`/g)].map((m) => m[1] as string));
}

/** The folder a file is mapped to: `broker/core/ids.ts` → `broker/core/`, `broker/gateway.ts` → `broker/`. */
const folderKey = (file: string) => `${dirname(file).split('/').slice(0, 2).join('/')}/`;

/** Each folder's row index, and the imports that reach a row below their own. */
export function layeringFaults(
  rows: string[][],
  graph: Map<string, Import[]>,
): { unmapped: string[]; downward: string[] } {
  const rowOf = new Map(rows.flatMap((folders, i) => folders.map((f) => [f, i] as const)));
  const unmapped = new Set<string>();
  const downward = new Set<string>();
  for (const [file, imports] of graph) {
    const from = rowOf.get(folderKey(file));
    if (from === undefined) {
      unmapped.add(folderKey(file));
      continue;
    }
    for (const i of imports) {
      if (!i.target.endsWith('.ts')) continue;
      const to = rowOf.get(folderKey(i.target));
      if (to !== undefined && to > from) downward.add(`${folderKey(file)} -> ${folderKey(i.target)} (${file})`);
    }
  }
  return { unmapped: [...unmapped].sort(), downward: [...downward].sort() };
}

const doc = readFileSync(join(repoRoot, 'docs', 'architecture.md'), 'utf8');
const files = Object.fromEntries(ROOTS.flatMap(sourceFiles).map((f) => [f, readFileSync(join(repoRoot, f), 'utf8')]));

t.test('every source folder has a row in the folder map, and no import reaches a row below its own', async (t) => {
  const rows = folderRows(doc);
  t.ok(rows.length > 20, `the table is found (${rows.length} rows)`);
  const { unmapped, downward } = layeringFaults(rows, importGraph(files));
  t.same(unmapped, [], 'every folder is in docs/architecture.md');
  t.same(downward, [], 'each folder imports only its own row and the rows above');
});

t.test('the check itself: a missing row and an upside-down import are caught', async (t) => {
  const rows = folderRows(
    '## Where the code is\n\n| folder | what |\n|---|---|\n| `broker/core/` | x |\n| `broker/log/`, `broker/keys/` | y |\n\n## Next\n| `broker/http/` | z |\n',
  );
  t.same(rows, [['broker/core/'], ['broker/log/', 'broker/keys/']], 'rows and their folders, this section only');
  const graph = importGraph({
    'broker/core/a.ts': "import { b } from '../log/b.js';\n",
    'broker/log/b.ts': "import { k } from '../keys/k.js';\nimport { a } from '../core/a.js';\n",
    'broker/keys/k.ts': 'export const k = 1;\n',
    'broker/http/h.ts': "import { a } from '../core/a.js';\n",
  });
  t.same(layeringFaults(rows, graph), {
    unmapped: ['broker/http/'],
    downward: ['broker/core/ -> broker/log/ (broker/core/a.ts)'],
  });
});
