/**
 * The import rules of docs/architecture.md, checked over the source's import
 * graph (TypeScript's own parser, so `import type`, re-exports and `import()`
 * are told apart):
 *
 * - the pure modules (core, the policies, Merkle and checkpoint code, the
 *   routing plan) load neither `nats` nor `fastify`, not even through another
 *   module;
 * - the envelope adapters (adapters/jose, adapters/openpgp) never import
 *   routing, ingest or the HTTP edge; no adapter at all imports routing;
 * - the delivery transports (adapters/webhook, adapters/sse) reach NATS, keys,
 *   the registry and routing only through their contract
 *   (adapters/transport/contract.ts);
 * - NATS stays at the edge: the registry, keys, auth, log, acks and metrics
 *   (and the other StorePort users listed in NATS_FREE) import neither `nats`
 *   nor broker/nats, not even a type: they are given the StorePort
 *   (broker/core/store-port.ts);
 * - folders form no cycle: the folder graph is layered (issue 22 took the
 *   79 folder edges that were on one cycle off it), so any import that
 *   closes a cycle fails and names the edges on it.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../broker/core/paths.js';

interface Import {
  /** A repo-relative .ts path, or the package name for a bare specifier. */
  target: string;
  /** Loaded at run time (not `import type` / `export type`). */
  runtime: boolean;
}

const SOURCE_ROOTS = ['broker', 'adapters'];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `nats/jetstream` → `nats`, `@fastify/helmet` → `@fastify/helmet`. */
const packageOf = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));

function importsOf(file: string, text: string): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (spec: string, runtime: boolean) => {
    if (spec.startsWith('node:')) return;
    if (!spec.startsWith('.')) return void out.push({ target: packageOf(spec), runtime });
    const abs = resolve(repoRoot, dirname(file), spec).replace(/\.js$/, '.ts');
    out.push({ target: relative(repoRoot, abs), runtime });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        !!clause &&
        (clause.isTypeOnly ||
          (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, !typeOnly);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, !node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      add(node.arguments[0].text, true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node.argument.literal.text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function importGraph(files: Record<string, string>): Map<string, Import[]> {
  return new Map(Object.entries(files).map(([file, text]) => [file, importsOf(file, text)]));
}

/** Every package a module loads at run time, through any chain of runtime imports. */
function packagesLoadedBy(graph: Map<string, Import[]>, start: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const seen = new Set<string>([start]);
  const queue: { file: string; via: string[] }[] = [{ file: start, via: [start] }];
  while (queue.length) {
    const { file, via } = queue.shift()!;
    for (const i of graph.get(file) ?? []) {
      if (!i.runtime) continue;
      if (!i.target.endsWith('.ts')) {
        if (!found.has(i.target)) found.set(i.target, via);
      } else if (!seen.has(i.target)) {
        seen.add(i.target);
        queue.push({ file: i.target, via: [...via, i.target] });
      }
    }
  }
  return found;
}

/** broker/ingest/policy.ts → broker/ingest; broker/gateway.ts → broker. */
const folderOf = (file: string) => dirname(file).split('/').slice(0, 2).join('/');

/** Folder-level edges (any import, type-only included: a type is coupling too) that lie on a cycle. */
function cycleEdges(graph: Map<string, Import[]>): Set<string> {
  const edges = new Map<string, Set<string>>();
  for (const [file, imports] of graph) {
    for (const i of imports) {
      if (!i.target.endsWith('.ts')) continue;
      const [a, b] = [folderOf(file), folderOf(i.target)];
      if (a !== b) edges.set(a, (edges.get(a) ?? new Set()).add(b));
    }
  }
  const reaches = (from: string, to: string) => {
    const seen = new Set([from]);
    const stack = [from];
    while (stack.length) {
      for (const next of edges.get(stack.pop()!) ?? []) {
        if (next === to) return true;
        if (!seen.has(next)) {
          stack.push(next);
          seen.add(next);
        }
      }
    }
    return false;
  };
  const onCycle = new Set<string>();
  for (const [a, targets] of edges) for (const b of targets) if (reaches(b, a)) onCycle.add(`${a} -> ${b}`);
  return onCycle;
}

/** Modules that hold logic only: no I/O library may load with them. */
const PURE = [
  'broker/core/envelope.ts',
  'broker/core/errors.ts',
  'broker/core/ids.ts',
  'broker/core/jose-header.ts',
  'broker/core/reconnect-watch.ts',
  'broker/core/store-port.ts',
  'broker/core/stream-names.ts',
  'broker/core/strict-json.ts',
  'broker/core/notice.ts',
  'broker/ingest/policy.ts',
  'broker/ingest/withdrawal-policy.ts',
  'broker/ingest/freshness.ts',
  'broker/log/merkle.ts',
  'broker/log/compact-range.ts',
  'broker/log/checkpoint.ts',
  'broker/log/entry.ts',
  'broker/routing/plan.ts',
];
const IO_PACKAGES = ['nats', 'fastify', '@fastify/helmet', '@fastify/rate-limit', '@fastify/swagger', '@fastify/swagger-ui', '@fastify/under-pressure', 'fastify-plugin', 'undici'];

/** Folders an envelope adapter may never import. */
const ADAPTER_FORBIDDEN = ['broker/routing', 'broker/ingest', 'broker/http', 'broker/background'];
const ENVELOPE_ADAPTERS = ['adapters/jose', 'adapters/openpgp'];
/** Folders a delivery transport may never import: what it needs comes through the transport contract. */
const TRANSPORT_FORBIDDEN = ['broker/routing', 'broker/nats', 'broker/keys', 'broker/registry', 'broker/cli'];
const TRANSPORT_ADAPTERS = ['adapters/webhook', 'adapters/sse'];

/** Folders and files that reach NATS only through the StorePort (broker/core/store-port.ts). */
const NATS_FREE_FOLDERS = ['broker/registry', 'broker/keys', 'broker/auth', 'broker/log', 'broker/acks', 'broker/metrics'];
const NATS_FREE_FILES = ['broker/admin/key-admin.ts', 'broker/audit/export.ts', 'broker/http/routes/health.ts', 'broker/http/routes/log.ts'];
/** Still on the raw client, pending its own move (issue 22): the checkpointer's LOG consumer and lease. */
const NATS_FREE_EXCEPT = ['broker/log/checkpointer.ts'];

const files = Object.fromEntries(SOURCE_ROOTS.flatMap(sourceFiles).map((f) => [f, readFileSync(join(repoRoot, f), 'utf8')]));
const graph = importGraph(files);

t.test('pure modules load no I/O library, directly or through another module', async (t) => {
  for (const file of PURE) {
    t.ok(graph.has(file), `${file} exists (keep this list in step with the code)`);
    const loaded = packagesLoadedBy(graph, file);
    for (const pkg of IO_PACKAGES) t.notOk(loaded.has(pkg), `${file} does not load ${pkg}${loaded.has(pkg) ? ` (via ${loaded.get(pkg)!.join(' → ')})` : ''}`);
  }
});

t.test('envelope adapters import no routing, ingest or HTTP code', async (t) => {
  for (const [file, imports] of graph) {
    if (!ENVELOPE_ADAPTERS.includes(folderOf(file))) continue;
    for (const i of imports) {
      const bad = ADAPTER_FORBIDDEN.find((f) => i.target.startsWith(`${f}/`));
      t.notOk(bad, `${file} does not import ${i.target}`);
    }
  }
});

t.test('no adapter imports routing', async (t) => {
  for (const [file, imports] of graph) {
    if (!file.startsWith('adapters/')) continue;
    for (const i of imports) t.notOk(i.target.startsWith('broker/routing/'), `${file} does not import ${i.target}`);
  }
});

t.test('delivery transports import no NATS, keys, registry, routing or CLI code', async (t) => {
  for (const [file, imports] of graph) {
    if (!TRANSPORT_ADAPTERS.includes(folderOf(file))) continue;
    for (const i of imports) {
      const bad = TRANSPORT_FORBIDDEN.find((f) => i.target.startsWith(`${f}/`));
      t.notOk(bad, `${file} does not import ${i.target}`);
    }
  }
});

t.test('the StorePort users import neither nats nor broker/nats', async (t) => {
  const users = [...graph.keys()].filter((f) => (NATS_FREE_FOLDERS.includes(folderOf(f)) || NATS_FREE_FILES.includes(f)) && !NATS_FREE_EXCEPT.includes(f));
  for (const file of NATS_FREE_FILES) t.ok(graph.has(file), `${file} exists (keep this list in step with the code)`);
  for (const file of users) {
    const bad = (graph.get(file) ?? []).filter((i) => i.target === 'nats' || i.target.startsWith('broker/nats/')).map((i) => i.target);
    t.same(bad, [], `${file} imports neither nats nor broker/nats`);
  }
});

t.test('no cycle between folders', async (t) => {
  t.same([...cycleEdges(graph)].sort(), [], 'no folder edge lies on a cycle');
});

t.test('the checks themselves: a made-up tree breaking each rule is caught', async (t) => {
  const bad = importGraph({
    'broker/core/pure.ts': "import { helper } from './helper.js';\nexport const x = helper;\n",
    'broker/core/helper.ts': "import { connect } from 'nats';\nexport const helper = connect;\n",
    'broker/core/typed.ts': "import type { NatsConnection } from 'nats';\nexport type C = NatsConnection;\n",
    'broker/core/lazy.ts': "export const load = () => import('fastify');\n",
    'broker/a/one.ts': "export { two } from '../b/two.js';\n",
    'broker/b/two.ts': "import type { Three } from '../c/three.js';\nexport const two: Three = 2;\n",
    'broker/c/three.ts': "import { one } from '../a/one.js';\nexport type Three = number; void one;\n",
  });
  t.same([...packagesLoadedBy(bad, 'broker/core/pure.ts').keys()], ['nats'], 'nats through another module');
  t.same([...packagesLoadedBy(bad, 'broker/core/typed.ts').keys()], [], 'a type-only import loads nothing');
  t.same([...packagesLoadedBy(bad, 'broker/core/lazy.ts').keys()], ['fastify'], 'a dynamic import loads');
  t.same([...cycleEdges(bad)].sort(), ['broker/a -> broker/b', 'broker/b -> broker/c', 'broker/c -> broker/a'], 'a three-folder cycle, through a re-export and a type import');
});
