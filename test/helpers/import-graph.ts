/**
 * The source's import graph, read with TypeScript's own parser (so `import
 * type`, re-exports and `import()` are told apart), for the tests that hold
 * the code to its layering (import-rules, docs-architecture).
 */
import { readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../../broker/core/paths.js';

export interface Import {
  /** A repo-relative .ts path, or the package name for a bare specifier. */
  target: string;
  /** Loaded at run time (not `import type` / `export type`). */
  runtime: boolean;
}

export const SOURCE_ROOTS = ['broker', 'adapters'];

export function sourceFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** `nats/jetstream` → `nats`, `@fastify/helmet` → `@fastify/helmet`. */
const packageOf = (spec: string) =>
  spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string);

export function importsOf(file: string, text: string): Import[] {
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
          (!clause.name &&
            !!clause.namedBindings &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, !typeOnly);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, !node.isTypeOnly);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      add(node.arguments[0].text, true);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      add(node.argument.literal.text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

export function importGraph(files: Record<string, string>): Map<string, Import[]> {
  return new Map(Object.entries(files).map(([file, text]) => [file, importsOf(file, text)]));
}

/** Every package a module loads at run time, through any chain of runtime imports. */
export function packagesLoadedBy(graph: Map<string, Import[]>, start: string): Map<string, string[]> {
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
export const folderOf = (file: string) => dirname(file).split('/').slice(0, 2).join('/');

/** Folder-level edges (any import, type-only included: a type is coupling too) that lie on a cycle. */
export function cycleEdges(graph: Map<string, Import[]>): Set<string> {
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
