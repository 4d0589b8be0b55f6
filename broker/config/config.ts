import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { CodedError } from '../core/errors.js';
import { schemaPath } from '../core/paths.js';

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly opsHost: string;
  readonly opsPort: number;
  readonly dataDir: string;
  readonly natsUrl: string | null;
  readonly natsServerBin: string | null;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly brokerId: string;
  readonly demo: boolean;
  readonly registrySeed: string | null;
  readonly tls: boolean;
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly tlsCa: string | null;
  readonly tlsCrl: string | null;
  readonly mtls: 'off' | 'optional' | 'required';
  readonly tlsServerNames: string;
  readonly rateLimitMax: number;
  readonly rateLimitWindowMs: number;
  readonly maxEventLoopDelayMs: number;
  readonly maxHeapUsedBytes: number;
  readonly maxRssBytes: number;
  readonly pressureSampleIntervalMs: number;
  readonly bodyLimitBytes: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly trustProxy: string;
  readonly maxJsonDepth: number;
  readonly clockSkewSeconds: number;
  readonly maxNoticeAgeSeconds: number;
  readonly duplicateWindowSeconds: number;
  readonly streamReplicas: 1 | 3 | 5;
  readonly publishTimeoutMs: number;
  readonly retryAfterSeconds: number;
  readonly deliveriesMaxAgeSeconds: number;
  readonly router: boolean;
  readonly leaseTtlSeconds: number;
  readonly routerAckWaitSeconds: number;
  readonly sseHeartbeatSeconds: number;
  readonly retentionDays: number;
  readonly reviewDays: number;
  readonly retentionEraser: boolean;
  readonly retentionSweepIntervalMs: number;
  readonly checkpointer: boolean;
  readonly checkpointEveryEntries: number;
  readonly checkpointIntervalMs: number;
  readonly backgroundThread: boolean;
  readonly backgroundNice: number;
  readonly webhook: boolean;
  readonly webhookTimeoutMs: number;
  readonly webhookBackoffBaseMs: number;
  readonly webhookBackoffMaxMs: number;
  readonly webhookMaxAttempts: number;
  readonly webhookAllowPrivateNetworks: boolean;
  readonly metricsTokenFile: string | null;
  readonly keyEncryptionKeyFile: string | null;
  readonly encryptionKeyGraceSeconds: number;
  readonly storageKeyDropAfterSeconds: number;
  readonly agencyKeyOverlapSeconds: number;
  readonly natsUser: string | null;
  readonly natsPassword: string | null;
  readonly natsPasswordFile: string | null;
  readonly natsToken: string | null;
  readonly natsCreds: string | null;
}

export class ConfigError extends CodedError<'config-invalid'> {
  constructor(message: string) {
    super('config-invalid', message);
  }
}

interface PropertySchema {
  'x-env'?: string;
  type?: string | string[];
  enum?: unknown[];
}
interface ConfigSchema {
  properties: Record<string, PropertySchema>;
}

const configSchema = JSON.parse(readFileSync(schemaPath('config.schema.json'), 'utf8')) as ConfigSchema;

// Defaults are applied by ajv; types from the environment are coerced here only,
// never by a shared ajv instance (notices get a strict one of their own).
const ajv = new Ajv2020({ allErrors: true, strict: true, useDefaults: true, coerceTypes: false });
ajv.addKeyword({ keyword: 'x-env', schemaType: 'string' });
const validateConfig = ajv.compile(configSchema);

function envValue(raw: string, prop: PropertySchema, name: string): unknown {
  const types = Array.isArray(prop.type) ? prop.type : prop.type === undefined ? [] : [prop.type];
  if (types.includes('integer')) {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name}: must be an integer (got a non-numeric value)`);
    return Number(raw.trim());
  }
  if (types.includes('boolean')) {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
    throw new ConfigError(`${name}: must be true or false`);
  }
  if (prop.enum !== undefined && prop.enum.every((e) => typeof e === 'number')) return Number(raw);
  return raw;
}

/** The environment variable behind each config key, from the schema's x-env annotations. */
export const configEnvNames: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(configSchema.properties).flatMap(([k, p]) => (p['x-env'] ? [[k, p['x-env']]] : [])),
  ),
);

/**
 * Load the configuration: defaults < config file (LIAISON_CONFIG or `file`) < environment.
 * Throws ConfigError naming the setting (its environment variable and key) on any bad value.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): Config {
  const data: Record<string, unknown> = {};
  const file = env.LIAISON_CONFIG;
  if (file !== undefined && file !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`LIAISON_CONFIG: cannot read ${file} as JSON (${(e as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(`LIAISON_CONFIG: ${file} must hold a JSON object`);
    }
    Object.assign(data, parsed);
  }
  for (const [key, prop] of Object.entries(configSchema.properties)) {
    const name = prop['x-env'];
    const raw = name === undefined ? undefined : env[name];
    if (name !== undefined && raw !== undefined && raw !== '') data[key] = envValue(raw, prop, name);
  }
  Object.assign(data, overrides);
  if (!validateConfig(data)) {
    const err = validateConfig.errors?.[0];
    const key =
      err?.instancePath.replace(/^\//, '') || (err?.params as { additionalProperty?: string }).additionalProperty || '';
    const env = configEnvNames[key];
    const where = env ? `${env} (config key "${key}")` : `config key "${key}"`;
    throw new ConfigError(`${where}: ${err?.message ?? 'invalid'}`);
  }
  const cfg = data as unknown as Config & { dataDir: string };
  if (cfg.duplicateWindowSeconds < cfg.maxNoticeAgeSeconds + cfg.clockSkewSeconds) {
    throw new ConfigError(
      `LIAISON_DUPLICATE_WINDOW_SECONDS (config key "duplicateWindowSeconds"): must be at least maxNoticeAgeSeconds + clockSkewSeconds (${cfg.maxNoticeAgeSeconds + cfg.clockSkewSeconds}), or a retried notice could be stored twice`,
    );
  }
  if (cfg.sseHeartbeatSeconds * 1000 >= cfg.idleTimeoutMs) {
    throw new ConfigError(
      `LIAISON_IDLE_TIMEOUT_MS (config key "idleTimeoutMs"): must be above sseHeartbeatSeconds (${cfg.sseHeartbeatSeconds} s), or idle SSE streams would be cut between heartbeats`,
    );
  }
  if (cfg.opsPort !== 0 && cfg.opsPort === cfg.port) {
    throw new ConfigError(
      `LIAISON_OPS_PORT (config key "opsPort"): must differ from port (${cfg.port}); 0 turns the operations listener off`,
    );
  }
  if (cfg.mtls !== 'off' && !cfg.tls) {
    throw new ConfigError(`LIAISON_MTLS (config key "mtls"): mutual TLS needs LIAISON_TLS=true`);
  }
  return Object.freeze({ ...cfg, dataDir: resolve(cfg.dataDir) });
}
