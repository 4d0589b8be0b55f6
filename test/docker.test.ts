/**
 * Docker does not run on the build machines: the Dockerfile and the compose
 * file are kept correct by this test, which parses both and checks them
 * against package.json, the config schema and the repository.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import semver from 'semver';
import { parse } from 'yaml';
import { GATEWAY_NODE_ARGS } from '../broker/core/heap-limits.js';
import { repoRoot } from '../broker/core/paths.js';
import { run } from '../broker/cli/liaison.js';
import { natsServerBin } from './helpers/nats.js';

/** The Node release .ci/run runs the suite on beside the machine's own (NODE_LTS=x.y.z). */
const ciNodeLts =
  /^NODE_LTS=(\d+\.\d+\.\d+)$/m.exec(readFileSync(join(repoRoot, '.ci', 'run'), 'utf8'))?.[1] ?? 'missing';

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

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  engines?: { node?: string };
};
const { instructions, stages } = parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
const last = stages.length - 1;
const inStage = (stage: number, op: string) => instructions.filter((i) => i.stage === stage && i.op === op);
const configSchema = JSON.parse(readFileSync(join(repoRoot, 'schemas', 'config.schema.json'), 'utf8')) as {
  properties: Record<string, { 'x-env'?: string; enum?: unknown[]; default?: unknown }>;
};
const knownEnv = new Set(
  Object.values(configSchema.properties)
    .map((p) => p['x-env'])
    .filter(Boolean),
);

t.test(
  'Dockerfile: multi-stage, build with npm ci + tsc, runtime with production deps, dist/ and schemas/',
  async (t) => {
    t.ok(stages.length >= 2, 'at least two stages');
    const build = stages.findIndex((s) => s.name === 'build');
    t.ok(build >= 0 && build < last, 'a build stage before the runtime stage');
    const buildRuns = inStage(build, 'RUN')
      .map((i) => i.args)
      .join('\n');
    t.match(buildRuns, /\bnpm ci\b/);
    t.match(buildRuns, new RegExp(`tsc -p tsconfig\\.build\\.json`), 'the same compile as package.json build');
    t.match(pkg.scripts.build, /^tsc -p tsconfig\.build\.json$/);
    const runtimeRuns = inStage(last, 'RUN')
      .map((i) => i.args)
      .join('\n');
    t.match(runtimeRuns, /\bnpm ci\b[^\n]*--omit=dev/, 'production dependencies only');
    const copies = inStage(last, 'COPY').map((i) => i.args);
    t.ok(
      copies.some((c) => new RegExp(`^--from=build\\s+\\S*/dist\\s`).test(c)),
      'dist/ from the build stage',
    );
    t.ok(
      copies.some((c) => /^schemas\s/.test(c)),
      'schemas/ (compiled by the gateway at start-up)',
    );
    t.ok(
      copies.some((c) => /^package\.json/.test(c)),
      'package.json ("type": "module")',
    );
    // Every path copied from the context exists and is not excluded by .dockerignore.
    const ignore = readFileSync(join(repoRoot, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const c of instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
      const parts = c.args.split(/\s+/);
      for (const src of parts.slice(0, -1)) {
        t.ok(existsSync(join(repoRoot, src)), `COPY ${src}: exists`);
        t.notOk(
          ignore.some((p) => src === p || src.startsWith(p + '/')),
          `COPY ${src}: not in .dockerignore`,
        );
      }
    }
    for (const base of stages.map((s) => s.base)) {
      const arg = instructions.find((i) => i.op === 'ARG' && i.stage === -1 && base === `\${${i.args.split('=')[0]}}`);
      const image = arg ? arg.args.split('=')[1] : base;
      const major = /^node:(\d+)-/.exec(image ?? '')?.[1];
      t.equal(
        major,
        String(semver.major(ciNodeLts)),
        `base image ${image} is the Node LTS line .ci/run tests on (${ciNodeLts})`,
      );
    }
  },
);

t.test('Node: engines name the LTS lines; .ci/run tests the pinned release the image is built on', async (t) => {
  const range = pkg.engines?.node ?? '';
  t.ok(semver.satisfies(ciNodeLts, range), `.ci/run's Node ${ciNodeLts} is within engines ${range}`);
  for (const supported of ['22.11.0', '24.11.0'])
    t.ok(semver.satisfies(supported, range), `Node ${supported} (first LTS of its line) is supported`);
  for (const unsupported of ['20.20.2', '23.11.0'])
    t.notOk(semver.satisfies(unsupported, range), `Node ${unsupported} (end of life / not LTS) is not claimed`);
  const ciRun = readFileSync(join(repoRoot, '.ci', 'run'), 'utf8');
  t.match(ciRun, /^\s*bash \.ci\/with-node "\$NODE_LTS" npm test\s*$/m, '.ci/run runs npm test on the pinned LTS');
});

t.test('Dockerfile: CMD is package.json start without the build step; non-root; healthcheck on /healthz', async (t) => {
  t.equal(pkg.scripts.prestart, 'npm run build', 'npm start builds first (prestart)');
  const cmd = inStage(last, 'CMD');
  t.equal(cmd.length, 1);
  // `exec`: the shell npm runs the script in becomes the gateway, so a signal to npm start reaches it (test/start-and-cli.test.ts).
  const start = pkg.scripts.start?.split(/\s+/) ?? [];
  t.equal(start[0], 'exec', 'npm start execs the gateway');
  t.same(JSON.parse(cmd[0]?.args ?? 'null'), start.slice(1), 'CMD (exec form) = package.json start');
  t.same(
    start.slice(1),
    ['node', ...GATEWAY_NODE_ARGS, 'dist/broker/main.js'],
    "npm start passes the gateway's V8 flags (broker/core/heap-limits.ts)",
  );
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
  // The operations listener (plain HTTP, no client certificate in any TLS mode), never the API port.
  t.match(
    hc[0]?.args,
    /http:\/\/127\.0\.0\.1:' \+ \(process\.env\.LIAISON_OPS_PORT \|\| (\d+)\)/,
    'the check calls the operations listener',
  );
  t.notMatch(hc[0]?.args, /LIAISON_PORT/, 'not the API port');
  t.equal(
    Number(/LIAISON_OPS_PORT \|\| (\d+)/.exec(hc[0]?.args ?? '')?.[1]),
    configSchema.properties.opsPort?.default,
    "its fallback is opsPort's default",
  );
  t.ok(inStage(last, 'EXPOSE').some((i) => i.args.split(/\s+/).includes('8080')));

  const env = inStage(last, 'ENV')
    .map((i) => i.args)
    .join(' ');
  t.match(env, /LIAISON_HOST=0\.0\.0\.0/, 'listens on all interfaces inside the container');
  t.match(env, /LIAISON_OPS_PORT=[1-9]\d*/, 'the operations listener is on');
  t.notMatch(env, /LIAISON_OPS_HOST=/, 'on loopback (its default), where the check runs');
  for (const m of env.matchAll(/\b(LIAISON_[A-Z_]+|NATS_URL|LOG_LEVEL)=/g))
    t.ok(knownEnv.has(m[1]), `${m[1]} is a setting in schemas/config.schema.json`);
});

t.test(
  "Dockerfile: the HEALTHCHECK command, run as Docker runs it, asks the operations listener's /healthz",
  async (t) => {
    const argv = JSON.parse(
      /CMD (\[.*\])$/.exec(inStage(last, 'HEALTHCHECK')[0]?.args ?? '')?.[1] ?? 'null',
    ) as string[];
    t.equal(argv[0], 'node');
    // Two stand-ins on loopback: the operations listener says ok, the API port (as under mtls required) never does.
    const seen: string[] = [];
    const serve = (status: number) =>
      new Promise<Server>((resolve) => {
        const s = createServer((req, res) => {
          seen.push(`${status} ${req.method} ${req.url}`);
          res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
        }).listen(0, '127.0.0.1', () => resolve(s));
      });
    const ops = await serve(200);
    const api = await serve(503);
    t.teardown(() => {
      ops.close();
      api.close();
    });
    const port = (s: Server) => String((s.address() as AddressInfo).port);
    const check = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, argv.slice(1), {
          env: { PATH: process.env.PATH ?? '', ...env },
          stdio: 'ignore',
        });
        child.once('exit', (code) => resolve(code));
      });
    t.equal(
      await check({ LIAISON_OPS_PORT: port(ops), LIAISON_PORT: port(api) }),
      0,
      'healthy: the operations listener answered',
    );
    t.same(seen, ['200 GET /healthz'], 'one GET /healthz, to the operations listener only');
    const closed = port(ops);
    await new Promise((r) => ops.close(r));
    t.equal(
      await check({ LIAISON_OPS_PORT: closed, LIAISON_PORT: port(api) }),
      1,
      'unhealthy when the operations listener does not answer',
    );
  },
);

t.test(
  'docker-compose.yml: a three-node NATS cluster with JetStream and authenticated routes and clients, two gateways with R3 streams',
  async (t) => {
    const compose = parse(readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, any>;
      volumes?: Record<string, unknown>;
    };
    const services = compose.services;
    const natsNames = Object.keys(services).filter((n) => String(services[n].image ?? '').startsWith('nats:'));
    t.equal(natsNames.length, 3, 'three NATS servers');
    // Each node reads deploy/nats/nats-server.conf (mounted read-only); its name and route URLs come from its environment.
    const confMount = '/etc/nats/nats-server.conf';
    const natsConf = readFileSync(join(repoRoot, 'deploy', 'nats', 'nats-server.conf'), 'utf8');
    const confCode = natsConf.replace(/#.*$/gm, '');
    const serverNames = new Set<string>();
    for (const n of natsNames) {
      const s = services[n];
      t.same(s.command, ['-c', confMount], `${n}: everything from the config file, nothing secret on the command line`);
      const vols = s.volumes as string[];
      t.ok(vols.includes(`./deploy/nats/nats-server.conf:${confMount}:ro`), `${n}: the config file, read-only`);
      t.ok(
        vols.some((v) => /^nats-creds:\/etc\/nats\/creds:ro$/.test(v)),
        `${n}: the generated accounts (creds/auth.conf), read-only`,
      );
      t.ok(
        vols.some((v) => v === `${n}:/data`),
        `${n}: the store dir is a volume`,
      );
      const env = s.environment as Record<string, string>;
      serverNames.add(env.NATS_SERVER_NAME as string);
      t.match(
        env.NATS_ROUTE_PASSWORD,
        /^\$\{NATS_ROUTE_PASSWORD:\?.+\}$/,
        `${n}: the route password from the operator's environment, required`,
      );
      const routes = [env.NATS_ROUTE_A, env.NATS_ROUTE_B].map(
        (r) => /^nats-route:\/\/route:\$\{NATS_ROUTE_PASSWORD\}@([^:]+):6222$/.exec(String(r))?.[1],
      );
      t.same(routes.sort(), natsNames.filter((o) => o !== n).sort(), `${n}: authenticated routes to the two others`);
      t.equal(
        s.depends_on?.['nats-creds']?.condition,
        'service_completed_successfully',
        `${n}: starts once the accounts are written`,
      );
      t.ok(s.healthcheck, `${n}: a healthcheck`);
    }
    t.equal(serverNames.size, 3, 'distinct server names (JetStream needs them)');
    t.match(confCode, /server_name: \$NATS_SERVER_NAME/);
    t.match(confCode, /jetstream \{\s+store_dir: "\/data"\s+\}/, 'JetStream on, its store the volume');
    t.match(
      confCode,
      /cluster \{\s+name: "liaison"\s+listen: "0\.0\.0\.0:6222"\s+authorization \{\s+user: "route"\s+password: \$NATS_ROUTE_PASSWORD\s+\}\s+routes: \[\s+\$NATS_ROUTE_A\s+\$NATS_ROUTE_B\s+\]\s+\}/,
      'routes authenticate',
    );
    t.match(confCode, /include "creds\/auth\.conf"/, 'client accounts from liaison nats creds');
    t.notMatch(confCode, /password: "/, 'no password written in the repository');
    t.notMatch(confCode, /no_auth_user|authorization \{\s+users/, 'no anonymous or single-account client access');
    const creds = services['nats-creds'];
    t.equal(creds?.image, 'liaison:local', 'the accounts are written by the liaison image');
    t.match(
      creds?.command?.join(' '),
      /test -f \/creds\/auth\.conf \|\|.*nats creds --registry \S+ --out \/creds/,
      'liaison nats creds, on the first start only (passwords kept)',
    );
    t.ok(compose.volumes && 'nats-creds' in compose.volumes, 'the nats-creds volume is declared');

    const gateways = Object.keys(services).filter((n) => services[n].build !== undefined);
    t.equal(gateways.length, 2, 'two gateways built from this Dockerfile');
    const keyVolumes = new Set<string>();
    for (const n of gateways) {
      const s = services[n];
      t.equal(s.build, '.');
      const env = s.environment as Record<string, string>;
      t.equal(String(env.LIAISON_STREAM_REPLICAS), '3', `${n}: LIAISON_STREAM_REPLICAS=3`);
      t.ok(configSchema.properties.streamReplicas?.enum?.includes(3));
      const urls = String(env.NATS_URL)
        .split(',')
        .map((u) => /^nats:\/\/([^:]+):4222$/.exec(u)?.[1]);
      t.same(urls.sort(), [...natsNames].sort(), `${n}: NATS_URL lists every NATS server`);
      for (const k of Object.keys(env)) t.ok(knownEnv.has(k), `${n}: ${k} is a setting in schemas/config.schema.json`);
      t.equal(env.NATS_USER, 'liaison-broker', `${n}: connects as the broker user`);
      t.equal(
        env.NATS_PASSWORD_FILE,
        '/run/nats-creds/liaison-broker.password',
        `${n}: its password from the generated file`,
      );
      t.ok(
        (s.volumes as string[]).includes('nats-creds:/run/nats-creds:ro'),
        `${n}: the credentials volume, read-only`,
      );
      t.equal(
        s.depends_on?.['nats-creds']?.condition,
        'service_completed_successfully',
        `${n}: starts once the accounts are written`,
      );
      t.notOk('NATS_PASSWORD' in env || 'NATS_TOKEN' in env, `${n}: no secret in the compose file`);
      for (const d of natsNames) t.equal(s.depends_on?.[d]?.condition, 'service_healthy', `${n}: waits for ${d}`);
      t.match(
        JSON.stringify(s.healthcheck?.test),
        new RegExp(`http://127\\.0\\.0\\.1:${env.LIAISON_OPS_PORT}/healthz`),
        `${n}: healthcheck on the operations listener's /healthz`,
      );
      t.ok(
        Number(env.LIAISON_OPS_PORT) > 0 && env.LIAISON_OPS_PORT !== env.LIAISON_PORT,
        `${n}: the operations listener is on, apart from the API port`,
      );
      const dataVol = (s.volumes as string[]).find((v) => v.endsWith(`:${env.LIAISON_DATA_DIR}`));
      t.ok(dataVol, `${n}: the data dir is a volume`);
      keyVolumes.add(String(dataVol).split(':')[0] as string);
      t.ok(
        (s.ports as string[]).every((p) => p.startsWith('127.0.0.1:')),
        `${n}: published on loopback only`,
      );
    }
    t.equal(keyVolumes.size, 1, 'the gateways share one data volume (the same broker keys)');
    t.ok(
      compose.volumes && [...keyVolumes].every((v) => v in (compose.volumes as object)),
      'the data volume is declared',
    );
    const ids = new Set(gateways.map((n) => services[n].environment.LIAISON_BROKER_ID));
    t.equal(ids.size, 1, 'one broker id');
    t.equal(
      services[gateways[1] as string].depends_on?.[gateways[0] as string]?.condition,
      'service_healthy',
      'the second gateway starts once the first has created the keys',
    );
  },
);

t.test('deploy/nats/nats-server.conf: nats-server 2.9 accepts it with generated accounts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-compose-nats-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(repoRoot, 'deploy', 'nats', 'nats-server.conf'), join(dir, 'nats-server.conf'));
  writeFileSync(join(dir, 'registry.json'), JSON.stringify({ agencies: [], operations: [] }));
  const sink = { out: () => undefined, err: () => undefined };
  t.equal(await run(['nats', 'creds', '--registry', join(dir, 'registry.json'), '--out', join(dir, 'creds')], sink), 0);
  const env = {
    ...process.env,
    NATS_SERVER_NAME: 'nats-1',
    NATS_ROUTE_PASSWORD: 'r0ute',
    NATS_ROUTE_A: 'nats-route://route:r0ute@nats-2:6222',
    NATS_ROUTE_B: 'nats-route://route:r0ute@nats-3:6222',
  };
  const r = spawnSync(natsServerBin(), ['-c', join(dir, 'nats-server.conf'), '-t'], { env, encoding: 'utf8' });
  t.equal(r.status, 0, `nats-server -t: ${r.stdout}${r.stderr}`);
  t.match(r.stdout + r.stderr, /is valid/);
});
