import t from 'tap';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, configEnvNames, loadConfig } from '../broker/config/config.js';
import { throwsWith } from './helpers/assert-error.js';

t.test('defaults follow the documented conventions', async (t) => {
  const c = loadConfig({});
  t.equal(c.host, '127.0.0.1');
  t.equal(c.port, 8080);
  t.equal(c.natsUrl, null);
  t.match(c.dataDir, /\/data$/);
  t.ok(Object.isFrozen(c));
});

t.test('environment variables, with types', async (t) => {
  const c = loadConfig({
    LIAISON_PORT: '9090',
    NATS_URL: 'nats://127.0.0.1:4222',
    LOG_LEVEL: 'warn',
    LIAISON_DEMO: 'yes',
    LIAISON_STREAM_REPLICAS: '3',
  });
  t.equal(c.port, 9090);
  t.equal(c.natsUrl, 'nats://127.0.0.1:4222');
  t.equal(c.logLevel, 'warn');
  t.equal(c.demo, true);
  t.equal(c.streamReplicas, 3);
  t.equal(configEnvNames.port, 'LIAISON_PORT');
});

t.test('a config file, overridden by the environment', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'liaison-cfg-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ port: 7000, brokerId: 'hub-two', logLevel: 'debug' }));
  const c = loadConfig({ LIAISON_CONFIG: file, LOG_LEVEL: 'error' });
  t.equal(c.port, 7000);
  t.equal(c.brokerId, 'hub-two');
  t.equal(c.logLevel, 'error');
});

t.test('a bad setting stops start-up with a message that names it', async (t) => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ LIAISON_PORT: 'eighty' }, /LIAISON_PORT: must be an integer/],
    [{ LIAISON_PORT: '70000' }, /LIAISON_PORT \(config key "port"\): must be <= 65535/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ NATS_URL: 'http://x' }, /NATS_URL/],
    [{ LIAISON_DEMO: 'perhaps' }, /LIAISON_DEMO: must be true or false/],
    [{ LIAISON_BROKER_ID: 'Hub.One' }, /LIAISON_BROKER_ID/],
    [{ LIAISON_STREAM_REPLICAS: '2' }, /LIAISON_STREAM_REPLICAS/],
    [{ LIAISON_DUPLICATE_WINDOW_SECONDS: '600' }, /LIAISON_DUPLICATE_WINDOW_SECONDS.*at least/],
    [{ LIAISON_IDLE_TIMEOUT_MS: '15000' }, /LIAISON_IDLE_TIMEOUT_MS.*above sseHeartbeatSeconds/],
    [{ LIAISON_REQUEST_TIMEOUT_MS: '0' }, /LIAISON_REQUEST_TIMEOUT_MS.*>= 1000/],
    [{ LIAISON_CONFIG: '/nonexistent/liaison.json' }, /LIAISON_CONFIG: cannot read/],
  ];
  for (const [env, msg] of bad)
    t.throws(() => loadConfig(env), { name: 'ConfigError', message: msg }, JSON.stringify(env));
  const dir = mkdtempSync(join(tmpdir(), 'liaison-cfg-'));
  writeFileSync(join(dir, 'a.json'), '[1,2]');
  throwsWith(t, () => loadConfig({ LIAISON_CONFIG: join(dir, 'a.json') }), ConfigError, 'config-invalid');
  writeFileSync(join(dir, 'b.json'), '{"prot": 1}');
  throwsWith(t, () => loadConfig({ LIAISON_CONFIG: join(dir, 'b.json') }), ConfigError, 'config-invalid', {
    message: /config key "prot"/,
  });
});
