/**
 * Docker does not run on the build machines: the Dockerfile and the compose
 * file are kept correct by this test, which parses both and checks them
 * against package.json, the config schema and the repository.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { GATEWAY_NODE_ARGS } from '../broker/core/heap-limits.js';
import { repoRoot } from '../broker/core/paths.js';

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions (line continuations joined, comments dropped), each with its stage number. */
function parseDockerfile(text: string): { instructions: Instruction[]; stages: { base: string; name?: string }[] } {
  const logical: string[] = [];
  let acc = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!acc && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      acc += line.slice(0, -1) + ' ';
      continue;
    }
    logical.push(acc + line);
    acc = '';
  }
  const stages: { base: string; name?: string }[] = [];
  const instructions: Instruction[] = [];
  for (const l of logical) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const op = (m[1] as string).toUpperCase();
    const args = (m[2] as string).trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ base: f?.[1] ?? args, ...(f?.[2] ? { name: f[2] } : {}) });
    }
    instructions.push({ op, args, stage: stages.length - 1 });
  }
  return { instructions, stages };
}

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines?: { node?: string } };
const { instructions, stages } = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const last = stages.length - 1;
const inStage = (stage: number, op: string) => instructions.filter((i) => i.stage === stage && i.op === op);
const configSchema = JSON.parse(readFileSync(join(repoRoot, 'schemas', 'config.schema.json'), 'utf8')) as { properties: Record<string, { 'x-env'?: string; enum?: unknown[] }> };
const knownEnv = new Set(Object.values(configSchema.properties).map((p) => p['x-env']).filter(Boolean));

t.test('Dockerfile: multi-stage, build with npm ci + tsc, runtime with production deps, dist/ and schemas/', async (t) => {
  t.ok(stages.length >= 2, 'at least two stages');
  const build = stages.findIndex((s) => s.name === 'build');
  t.ok(build >= 0 && build < last, 'a build stage before the runtime stage');
  const buildRuns = inStage(build, 'RUN').map((i) => i.args).join('\n');
  t.match(buildRuns, /\bnpm ci\b/);
  t.match(buildRuns, new RegExp(`tsc -p tsconfig\\.build\\.json`), 'the same compile as package.json build');
  t.match(pkg.scripts.build, /^tsc -p tsconfig\.build\.json$/);
  const runtimeRuns = inStage(last, 'RUN').map((i) => i.args).join('\n');
  t.match(runtimeRuns, /\bnpm ci\b[^\n]*--omit=dev/, 'production dependencies only');
  const copies = inStage(last, 'COPY').map((i) => i.args);
  t.ok(copies.some((c) => new RegExp(`^--from=build\\s+\\S*/dist\\s`).test(c)), 'dist/ from the build stage');
  t.ok(copies.some((c) => /^schemas\s/.test(c)), 'schemas/ (compiled by the gateway at start-up)');
  t.ok(copies.some((c) => /^package\.json/.test(c)), 'package.json ("type": "module")');
  // Every path copied from the context exists and is not excluded by .dockerignore.
  const ignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const c of instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
    const parts = c.args.split(/\s+/);
    for (const src of parts.slice(0, -1)) {
      t.ok(existsSync(join(repoRoot, src)), `COPY ${src}: exists`);
      t.notOk(ignore.some((p) => src === p || src.startsWith(p + '/')), `COPY ${src}: not in .dockerignore`);
    }
  }
  for (const base of stages.map((s) => s.base)) {
    const arg = instructions.find((i) => i.op === 'ARG' && i.stage === -1 && base === `\${${i.args.split('=')[0]}}`);
    const image = arg ? arg.args.split('=')[1] : base;
    t.match(image, /^node:20\b/, `base image ${image} is Node 20 (engines ${pkg.engines?.node})`);
  }
});

t.test('Dockerfile: CMD is package.json start without the build step; non-root; healthcheck on /healthz', async (t) => {
  t.equal(pkg.scripts.prestart, 'npm run build', 'npm start builds first (prestart)');
  const cmd = inStage(last, 'CMD');
  t.equal(cmd.length, 1);
  // `exec`: the shell npm runs the script in becomes the gateway, so a signal to npm start reaches it (test/start-and-cli.test.ts).
  const start = pkg.scripts.start?.split(/\s+/) ?? [];
  t.equal(start[0], 'exec', 'npm start execs the gateway');
  t.same(JSON.parse(cmd[0]?.args ?? 'null'), start.slice(1), 'CMD (exec form) = package.json start');
  t.same(start.slice(1), ['node', ...GATEWAY_NODE_ARGS, 'dist/broker/main.js'], "npm start passes the gateway's V8 flags (broker/core/heap-limits.ts)");
  t.equal(inStage(last, 'ENTRYPOINT').length, 0, 'no ENTRYPOINT wrapping the command');

  const users = inStage(last, 'USER');
  t.ok(users.length > 0, 'a USER');
  const user = users.at(-1)?.args ?? 'root';
  t.notOk(/^(root|0)(:|$)/.test(user), `runs as ${user}, not root`);
  const userAt = instructions.lastIndexOf(users.at(-1) as Instruction);
  t.ok(userAt < instructions.indexOf(cmd[0] as Instruction), 'USER comes before CMD');

  const hc = inStage(last, 'HEALTHCHECK');
  t.equal(hc.length, 1);
  t.match(hc[0]?.args, /\/healthz/);
  t.match(hc[0]?.args, /CMD \[/, 'exec form');
  t.ok(inStage(last, 'EXPOSE').some((i) => i.args.split(/\s+/).includes('8080')));

  const env = inStage(last, 'ENV').map((i) => i.args).join(' ');
  t.match(env, /LIAISON_HOST=0\.0\.0\.0/, 'listens on all interfaces inside the container');
  for (const m of env.matchAll(/\b(LIAISON_[A-Z_]+|NATS_URL|LOG_LEVEL)=/g)) t.ok(knownEnv.has(m[1]), `${m[1]} is a setting in schemas/config.schema.json`);
});

t.test('docker-compose.yml: a three-node NATS cluster with JetStream and routes, two gateways with R3 streams', async (t) => {
  const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, any>; volumes?: Record<string, unknown> };
  const services = compose.services;
  const natsNames = Object.keys(services).filter((n) => String(services[n].image ?? '').startsWith('nats:'));
  t.equal(natsNames.length, 3, 'three NATS servers');
  const flag = (cmd: string[], name: string) => {
    const i = cmd.indexOf(name);
    return i >= 0 ? cmd[i + 1] : undefined;
  };
  const clusterNames = new Set<string>();
  const serverNames = new Set<string>();
  for (const n of natsNames) {
    const cmd = services[n].command as string[];
    t.ok(Array.isArray(cmd), `${n}: command in exec form`);
    t.ok(cmd.includes('--jetstream') || cmd.includes('-js'), `${n}: JetStream on`);
    t.ok(flag(cmd, '--store_dir'), `${n}: a store dir`);
    t.ok((services[n].volumes as string[]).some((v) => v.endsWith(`:${flag(cmd, '--store_dir')}`)), `${n}: the store dir is a volume`);
    clusterNames.add(flag(cmd, '--cluster_name') as string);
    serverNames.add(flag(cmd, '--name') as string);
    t.match(flag(cmd, '--cluster'), /^nats:\/\/0\.0\.0\.0:6222$/, `${n}: cluster listener`);
    const routes = (flag(cmd, '--routes') ?? '').split(',').map((r) => /^nats:\/\/([^:]+):6222$/.exec(r)?.[1]);
    t.same(routes.sort(), natsNames.filter((o) => o !== n).sort(), `${n}: routes to the two others`);
    t.ok(services[n].healthcheck, `${n}: a healthcheck`);
  }
  t.equal(clusterNames.size, 1, 'one cluster name');
  t.notOk(clusterNames.has(undefined as unknown as string));
  t.equal(serverNames.size, 3, 'distinct server names (JetStream needs them)');

  const gateways = Object.keys(services).filter((n) => services[n].build !== undefined);
  t.equal(gateways.length, 2, 'two gateways built from this Dockerfile');
  const keyVolumes = new Set<string>();
  for (const n of gateways) {
    const s = services[n];
    t.equal(s.build, '.');
    const env = s.environment as Record<string, string>;
    t.equal(String(env.LIAISON_STREAM_REPLICAS), '3', `${n}: LIAISON_STREAM_REPLICAS=3`);
    t.ok(configSchema.properties.streamReplicas?.enum?.includes(3));
    const urls = String(env.NATS_URL).split(',').map((u) => /^nats:\/\/([^:]+):4222$/.exec(u)?.[1]);
    t.same(urls.sort(), [...natsNames].sort(), `${n}: NATS_URL lists every NATS server`);
    for (const k of Object.keys(env)) t.ok(knownEnv.has(k), `${n}: ${k} is a setting in schemas/config.schema.json`);
    for (const d of natsNames) t.equal(s.depends_on?.[d]?.condition, 'service_healthy', `${n}: waits for ${d}`);
    t.match(JSON.stringify(s.healthcheck?.test), /\/healthz/, `${n}: healthcheck on /healthz`);
    const dataVol = (s.volumes as string[]).find((v) => v.endsWith(`:${env.LIAISON_DATA_DIR}`));
    t.ok(dataVol, `${n}: the data dir is a volume`);
    keyVolumes.add(String(dataVol).split(':')[0] as string);
    t.ok((s.ports as string[]).every((p) => p.startsWith('127.0.0.1:')), `${n}: published on loopback only`);
  }
  t.equal(keyVolumes.size, 1, 'the gateways share one data volume (the same broker keys)');
  t.ok(compose.volumes && [...keyVolumes].every((v) => v in (compose.volumes as object)), 'the data volume is declared');
  const ids = new Set(gateways.map((n) => services[n].environment.LIAISON_BROKER_ID));
  t.equal(ids.size, 1, 'one broker id');
  t.equal(services[gateways[1] as string].depends_on?.[gateways[0] as string]?.condition, 'service_healthy', 'the second gateway starts once the first has created the keys');
});
