import { readFileSync } from 'node:fs';
import { CodedError } from '../core/errors.js';
import { readableByOthers, readSecretFile } from '../core/secret-file.js';
import {
  connect,
  credsAuthenticator,
  headers as natsHeaders,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  Events,
  type Authenticator,
  type NatsConnection,
  type JetStreamClient,
  type JetStreamManager,
  type PubAck,
  type StoredMsg,
  type KV,
  type KvOptions,
} from 'nats';
import type { Logger } from 'pino';
import type { PublishOptions, StorePort } from '../core/store-port.js';
import type { ConsumerPort } from '../core/consumer-port.js';
import type { LeasePort } from '../leader/lease.js';
import { jetStreamConsumers } from './consumers.js';
import { openKvLease } from './kv-lease.js';
import { isNotFound, natsUnavailable } from './errors.js';
import { installStoredStatusGuard } from './stored-status.js';
import { jetStreamStore } from './store.js';

export type { PublishOptions } from '../core/store-port.js';
export { watchAcrossReconnects } from '../core/reconnect-watch.js';

/**
 * The one NATS connection of a gateway process, and the ports over it that
 * the registry, keys, log, auth, acks, metrics and routing are given: the
 * StorePort (core/store-port.ts), the ConsumerPort (core/consumer-port.ts,
 * consumers.ts) and the LeasePort (leader/lease.ts, kv-lease.ts). Store
 * failures are translated once into `unavailable` (503; errors.ts), keeping
 * the original as `cause`.
 *
 * nc, js, jsm and kv() are the raw client, for what still drives NATS
 * directly (stream and agency consumer set-up); nothing else should take them.
 */
export interface NatsBus extends StorePort, ConsumerPort, LeasePort {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  publish(subject: string, data: Uint8Array, opts: PublishOptions): Promise<PubAck>;
  getMessage(stream: string, seq: number): Promise<StoredMsg | null>;
  kv(bucket: string, opts?: Partial<KvOptions>): Promise<KV>;
  close(): Promise<void>;
}

/**
 * How this process authenticates to NATS: the config keys of the gateway
 * (natsUser, natsPassword, natsPasswordFile, natsToken, natsCreds; env NATS_USER,
 * NATS_PASSWORD, NATS_PASSWORD_FILE, NATS_TOKEN, NATS_CREDS). All unset: no credentials.
 */
export interface NatsAuthSettings {
  readonly natsUser?: string | null | undefined;
  readonly natsPassword?: string | null | undefined;
  readonly natsPasswordFile?: string | null | undefined;
  readonly natsToken?: string | null | undefined;
  readonly natsCreds?: string | null | undefined;
}

/** The environment variable of each NATS auth setting (the same for the gateway and the CLI). */
export const NATS_AUTH_ENV = {
  natsUser: 'NATS_USER',
  natsPassword: 'NATS_PASSWORD',
  natsPasswordFile: 'NATS_PASSWORD_FILE',
  natsToken: 'NATS_TOKEN',
  natsCreds: 'NATS_CREDS',
} as const satisfies Record<keyof NatsAuthSettings, string>;

/** A bad NATS auth setting, or NATS refusing the credentials. The message never holds a secret. */
export class NatsAuthError extends CodedError<'nats-auth-failed'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('nats-auth-failed', message, options);
  }
}

const setting = (key: keyof NatsAuthSettings) => `${NATS_AUTH_ENV[key]} (config key "${key}")`;
const given = (v: string | null | undefined): v is string => typeof v === 'string' && v !== '';

/**
 * The NATS auth settings of a CLI process: the environment, else the same keys in
 * the JSON file named by LIAISON_CONFIG (the gateway's precedence), nothing else
 * of that file is read or checked.
 */
export function natsAuthFromEnv(env: NodeJS.ProcessEnv = process.env): NatsAuthSettings {
  let file: Record<string, unknown> = {};
  if (given(env.LIAISON_CONFIG)) {
    try {
      const parsed = JSON.parse(readFileSync(env.LIAISON_CONFIG, 'utf8')) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) file = parsed as Record<string, unknown>;
    } catch {
      /* the gateway reports a bad config file; a CLI command falls back to the environment */
    }
  }
  const out: { -readonly [K in keyof NatsAuthSettings]: string | null } = {};
  for (const [key, name] of Object.entries(NATS_AUTH_ENV) as [keyof NatsAuthSettings, string][]) {
    const v = env[name];
    const f = file[key];
    out[key] = given(v) ? v : typeof f === 'string' && f !== '' ? f : null;
  }
  return out;
}

function readNatsSecret(key: keyof NatsAuthSettings, file: string): string {
  try {
    return readSecretFile(file, setting(key), { oneLine: key === 'natsPasswordFile' });
  } catch (e) {
    throw new NatsAuthError((e as Error).message);
  }
}

/** What to tell NATS, and how to name it in messages (never the secret). */
export interface NatsAuth {
  /** Absent: connect without credentials. */
  authenticator?: Authenticator;
  /** e.g. `user "liaison-broker"`, `a token`, `the credentials file /etc/...`, `no credentials`. */
  describe: string;
  /** The settings to check when NATS refuses the credentials. */
  hint: string;
  /** Files holding a secret that others than the owner can read (worth a warning). */
  looseFiles: string[];
}

/**
 * Check the NATS auth settings (one method: user + password or password file,
 * token, or creds file) and build the authenticator. Files are read now (a
 * missing file stops start-up) and again at every reconnect, keeping the last
 * good value if a re-read fails, so a rotated secret needs no restart.
 */
export function natsAuth(s: NatsAuthSettings): NatsAuth {
  const user = given(s.natsUser) ? s.natsUser : null;
  const password = given(s.natsPassword) ? s.natsPassword : null;
  const passwordFile = given(s.natsPasswordFile) ? s.natsPasswordFile : null;
  const token = given(s.natsToken) ? s.natsToken : null;
  const creds = given(s.natsCreds) ? s.natsCreds : null;
  const methods = [user !== null || password !== null || passwordFile !== null, token !== null, creds !== null].filter(
    Boolean,
  ).length;
  if (methods > 1)
    throw new NatsAuthError(
      `NATS credentials: set one of ${NATS_AUTH_ENV.natsUser} (with a password), ${NATS_AUTH_ENV.natsToken} or ${NATS_AUTH_ENV.natsCreds}, not several`,
    );
  const loose = (file: string) => (readableByOthers(file) ? [file] : []);
  const rereading = (key: keyof NatsAuthSettings, file: string) => {
    let last = readNatsSecret(key, file);
    return () => {
      try {
        last = readNatsSecret(key, file);
      } catch {
        /* keep the last good secret; the old one may still be valid */
      }
      return last;
    };
  };
  if (password !== null || passwordFile !== null || user !== null) {
    if (user === null)
      throw new NatsAuthError(
        `${setting(password !== null ? 'natsPassword' : 'natsPasswordFile')}: needs ${setting('natsUser')}`,
      );
    if (password !== null && passwordFile !== null)
      throw new NatsAuthError(`${setting('natsPassword')} and ${setting('natsPasswordFile')}: set one, not both`);
    if (password === null && passwordFile === null)
      throw new NatsAuthError(
        `${setting('natsUser')}: needs ${setting('natsPasswordFile')} or ${setting('natsPassword')}`,
      );
    const pass = passwordFile !== null ? rereading('natsPasswordFile', passwordFile) : (password as string);
    return {
      authenticator: usernamePasswordAuthenticator(user, pass),
      describe: `user ${JSON.stringify(user)}`,
      hint: `check ${NATS_AUTH_ENV.natsUser} and ${passwordFile !== null ? NATS_AUTH_ENV.natsPasswordFile : NATS_AUTH_ENV.natsPassword}`,
      looseFiles: passwordFile !== null ? loose(passwordFile) : [],
    };
  }
  if (token !== null)
    return {
      authenticator: tokenAuthenticator(token),
      describe: 'a token',
      hint: `check ${NATS_AUTH_ENV.natsToken}`,
      looseFiles: [],
    };
  if (creds !== null) {
    const read = rereading('natsCreds', creds);
    return {
      authenticator: credsAuthenticator(() => new TextEncoder().encode(read())),
      describe: `the credentials file ${creds}`,
      hint: `check ${NATS_AUTH_ENV.natsCreds}`,
      looseFiles: loose(creds),
    };
  }
  return {
    describe: 'no credentials',
    hint: `set ${NATS_AUTH_ENV.natsUser} with ${NATS_AUTH_ENV.natsPasswordFile} (or ${NATS_AUTH_ENV.natsPassword}), ${NATS_AUTH_ENV.natsToken} or ${NATS_AUTH_ENV.natsCreds}`,
    looseFiles: [],
  };
}

/** Server URLs for messages: any `user:password@` in them is dropped. */
export const redactServers = (servers: string): string => servers.replace(/\/\/[^/@\s]*@/g, '//');

const AUTH_CODES = new Set([
  'AUTHORIZATION_VIOLATION',
  'AUTHENTICATION_EXPIRED',
  'AUTHENTICATION_TIMEOUT',
  'ACCOUNT_EXPIRED',
]);

export interface ConnectOptions {
  servers: string;
  name: string;
  publishTimeoutMs: number;
  logger: Logger;
  /** Credentials (the gateway passes its config). Absent: from the environment and LIAISON_CONFIG (natsAuthFromEnv), as the CLI commands do (they pass cliNatsAuth(): that, else the data dir's local broker user). */
  auth?: NatsAuthSettings;
}

/**
 * A barrier that releases, in call order, everyone who waited during one
 * event-loop turn, all at once (in the turn's check phase). The client writes
 * what was sent in one synchronous run as one socket write; publishes issued
 * from separate continuations (one per request, one per routed notice) each
 * went out as their own write, and each write to loopback also wakes
 * nats-server. Released together they share one, for a wait of at most one
 * turn: nats-server's CPU per notice fell to 0.84-0.88 of before in every A/B
 * of the full gateway (bench/ab.ts; docs/benchmarks.md), the gateway's own by
 * less than that machine's noise.
 */
export function turnBarrier(): () => Promise<void> {
  let waiting: (() => void)[] = [];
  const release = () => {
    const now = waiting;
    waiting = [];
    for (const go of now) go();
  };
  return () =>
    new Promise<void>((resolve) => {
      if (waiting.push(resolve) === 1) setImmediate(release);
    });
}

export async function connectNats(opts: ConnectOptions): Promise<NatsBus> {
  // A message stored with a status line must reach the readers as data, not as a NATS status (stored-status.ts).
  installStoredStatusGuard();
  const auth = natsAuth(opts.auth ?? natsAuthFromEnv());
  for (const file of auth.looseFiles)
    opts.logger.warn(
      { event: 'nats-secret-file-mode', file },
      'a NATS secret file can be read by other users; chmod 600 it',
    );
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: opts.servers.split(',').map((s) => s.trim()),
      name: opts.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 5000,
      maxPingOut: 2,
      waitOnFirstConnect: false,
      // Keep reconnecting through an auth error (a password being rotated): the gateway must recover without a restart.
      ignoreAuthErrorAbort: true,
      // No call-site stack captured per request: with traces on, every JetStream publish built an Error (bench profile).
      // Our errors say what failed (natsUnavailable(e, 'publish <subject>')).
      noAsyncTraces: true,
      ...(auth.authenticator ? { authenticator: auth.authenticator } : {}),
    });
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    const where = `NATS at ${redactServers(opts.servers)}`;
    if (AUTH_CODES.has(code)) {
      const what = auth.authenticator ? `refused ${auth.describe}` : 'requires credentials';
      throw new NatsAuthError(`${where} ${what} (${code.toLowerCase().replace(/_/g, ' ')}); ${auth.hint}`, {
        cause: e,
      });
    }
    throw new Error(`cannot connect to ${where}: ${(e as Error).message}`, { cause: e });
  }
  let connected = true;
  let lastError = '';
  const reconnectListeners = new Set<() => void>();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        connected = false;
        opts.logger.warn({ event: 'nats-disconnect' }, 'NATS connection lost');
      } else if (s.type === Events.Reconnect) {
        connected = true;
        lastError = '';
        opts.logger.info({ event: 'nats-reconnect' }, 'NATS connection restored');
        for (const fn of reconnectListeners) fn();
      } else if (s.type === Events.Error) {
        // An auth error while reconnecting: logged once per kind (the client retries every few hundred ms), without the secret.
        /* eslint-disable @typescript-eslint/no-base-to-string -- any code, as text */
        const code =
          typeof s.data === 'string' ? s.data : String((s.data as { code?: unknown } | undefined)?.code ?? '');
        /* eslint-enable @typescript-eslint/no-base-to-string */
        if (AUTH_CODES.has(code) && code !== lastError) {
          lastError = code;
          opts.logger.error(
            { event: 'nats-auth-error', code, auth: auth.describe },
            `NATS refused ${auth.describe}; ${auth.hint}`,
          );
        }
      }
    }
  })();
  const js = nc.jetstream({ timeout: opts.publishTimeoutMs });
  const jsm = await nc.jetstreamManager({ timeout: opts.publishTimeoutMs });
  const guard = (what: string) => {
    if (!connected || nc.isClosed()) throw natsUnavailable(new Error('not connected'), what);
  };
  // Publishes leave in the order publish() was called (the barrier releases in call order), so one caller's order holds.
  const publishTurn = turnBarrier();

  const publish: NatsBus['publish'] = async (subject, data, p) => {
    guard('publish');
    const h = natsHeaders();
    for (const [k, v] of Object.entries(p.headers ?? {})) h.set(k, v);
    await publishTurn();
    try {
      return await js.publish(subject, data, {
        ...(p.msgID === undefined ? {} : { msgID: p.msgID }),
        headers: h,
        timeout: opts.publishTimeoutMs,
        ...(p.expectLastSequence === undefined && p.expectLastSubjectSequence === undefined
          ? {}
          : {
              expect: {
                ...(p.expectLastSequence === undefined ? {} : { lastSequence: p.expectLastSequence }),
                ...(p.expectLastSubjectSequence === undefined
                  ? {}
                  : { lastSubjectSequence: p.expectLastSubjectSequence }),
              },
            }),
      });
    } catch (e) {
      throw natsUnavailable(e, `publish ${subject}`);
    }
  };

  const bus: NatsBus = {
    nc,
    js,
    jsm,
    ...jetStreamConsumers(js, jsm),
    openLease: (name, holder, ttlMs, replicas) => openKvLease(bus, name, holder, ttlMs, replicas),
    isConnected: () => connected && !nc.isClosed(),
    onReconnect(fn) {
      reconnectListeners.add(fn);
      return () => reconnectListeners.delete(fn);
    },
    publish,
    ...jetStreamStore({ js, jsm, guard, publish, timeoutMs: opts.publishTimeoutMs }),
    async getMessage(stream, seq) {
      guard('get');
      try {
        return await jsm.streams.getMessage(stream, { seq });
      } catch (e) {
        if (isNotFound(e)) return null;
        throw natsUnavailable(e, `get ${stream}#${seq}`);
      }
    },
    async kv(bucket, kvOpts) {
      guard('kv');
      try {
        return await js.views.kv(bucket, { timeout: opts.publishTimeoutMs, ...kvOpts });
      } catch (e) {
        throw natsUnavailable(e, `kv ${bucket}`);
      }
    },
    async close() {
      if (nc.isClosed()) return;
      // Drain flushes pending work, but needs a server: bound it, then close.
      if (connected) {
        const drained = nc.drain().then(
          () => true,
          () => false,
        );
        const timedOut = new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref());
        if (await Promise.race([drained, timedOut])) return;
      }
      await nc.close();
    },
  };
  return bus;
}
