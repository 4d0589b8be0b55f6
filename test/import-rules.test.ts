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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../broker/core/paths.js';
import {
  cycleEdges,
  folderOf,
  importGraph,
  packagesLoadedBy,
  SOURCE_ROOTS,
  sourceFiles,
} from './helpers/import-graph.js';

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
const IO_PACKAGES = [
  'nats',
  'fastify',
  '@fastify/helmet',
  '@fastify/rate-limit',
  '@fastify/swagger',
  '@fastify/swagger-ui',
  '@fastify/under-pressure',
  'fastify-plugin',
  'undici',
];

/** Folders an envelope adapter may never import. */
const ADAPTER_FORBIDDEN = ['broker/routing', 'broker/ingest', 'broker/http', 'broker/background'];
const ENVELOPE_ADAPTERS = ['adapters/jose', 'adapters/openpgp'];
/** Folders a delivery transport may never import: what it needs comes through the transport contract. */
const TRANSPORT_FORBIDDEN = ['broker/routing', 'broker/nats', 'broker/keys', 'broker/registry', 'broker/cli'];
const TRANSPORT_ADAPTERS = ['adapters/webhook', 'adapters/sse'];

/** Folders and files that reach NATS only through the ports (broker/core/store-port.ts, consumer-port.ts, broker/leader/lease.ts). */
const NATS_FREE_FOLDERS = [
  'broker/registry',
  'broker/keys',
  'broker/auth',
  'broker/log',
  'broker/acks',
  'broker/metrics',
  'broker/routing',
];
const NATS_FREE_FILES = [
  'broker/admin/key-admin.ts',
  'broker/audit/export.ts',
  'broker/http/routes/health.ts',
  'broker/http/routes/log.ts',
];

const files = Object.fromEntries(
  SOURCE_ROOTS.flatMap(sourceFiles).map((f) => [f, readFileSync(join(repoRoot, f), 'utf8')]),
);
const graph = importGraph(files);

t.test('pure modules load no I/O library, directly or through another module', async (t) => {
  for (const file of PURE) {
    t.ok(graph.has(file), `${file} exists (keep this list in step with the code)`);
    const loaded = packagesLoadedBy(graph, file);
    for (const pkg of IO_PACKAGES)
      t.notOk(
        loaded.has(pkg),
        `${file} does not load ${pkg}${loaded.has(pkg) ? ` (via ${loaded.get(pkg)!.join(' → ')})` : ''}`,
      );
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
  const users = [...graph.keys()].filter((f) => NATS_FREE_FOLDERS.includes(folderOf(f)) || NATS_FREE_FILES.includes(f));
  for (const file of NATS_FREE_FILES) t.ok(graph.has(file), `${file} exists (keep this list in step with the code)`);
  for (const file of users) {
    const bad = (graph.get(file) ?? [])
      .filter((i) => i.target === 'nats' || i.target.startsWith('broker/nats/'))
      .map((i) => i.target);
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
  t.same(
    [...cycleEdges(bad)].sort(),
    ['broker/a -> broker/b', 'broker/b -> broker/c', 'broker/c -> broker/a'],
    'a three-folder cycle, through a re-export and a type import',
  );
});
