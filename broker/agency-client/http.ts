/**
 * The CLI's HTTP client: undici's fetch with an Agent of its own, which can
 * present an agency's client certificate (mutual TLS) and trust the network CA
 * (Node's built-in fetch takes no TLS options).
 *
 * Every `liaison` command that talks to the gateway uses `clientFetch`:
 *   --cert FILE --key FILE   the agency's client certificate and key (PEM); env LIAISON_CLIENT_CERT, LIAISON_CLIENT_KEY
 *   --ca FILE                the CA that signed the gateway's certificate (PEM); env LIAISON_CA
 * Errors are `HttpClientError`s with one-line messages that say what to do
 * (no stack trace, never a key).
 */
import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { UsageError } from '../core/usage-error.js';
import { CodedError } from '../core/errors.js';

/** The client-TLS files of a command (paths). */
export interface ClientTlsFiles {
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
}

/** The subset of fetch the clients use. */
export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
}
export type FetchLike = (url: string, init?: FetchInit) => Promise<Response>;

export class HttpClientError extends CodedError<'client-request-failed'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('client-request-failed', message, options);
  }
}

/** The environment variables behind --cert, --key and --ca. */
export const CLIENT_TLS_ENV = { cert: 'LIAISON_CLIENT_CERT', key: 'LIAISON_CLIENT_KEY', ca: 'LIAISON_CA' } as const;

/** parseArgs options of the three flags, to spread into a command's options. */
export const clientTlsOptions = {
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
} as const;

/** The flags, else the environment (an empty variable counts as unset). */
export function clientTlsFromArgs(values: ClientTlsFiles, env: NodeJS.ProcessEnv = process.env): ClientTlsFiles {
  const pick = (k: keyof ClientTlsFiles) => values[k] ?? (env[CLIENT_TLS_ENV[k]] || undefined);
  return { cert: pick('cert'), key: pick('key'), ca: pick('ca') };
}

interface LoadedTls {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

function load(files: ClientTlsFiles): LoadedTls {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new UsageError(
      `a client certificate needs both --cert and --key (or ${CLIENT_TLS_ENV.cert} and ${CLIENT_TLS_ENV.key})`,
    );
  }
  const read = (flag: keyof ClientTlsFiles, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (e) {
      throw new HttpClientError(`--${flag} ${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  const out: LoadedTls = {};
  const cert = read('cert', files.cert);
  const key = read('key', files.key);
  const ca = read('ca', files.ca);
  if (cert) out.cert = cert;
  if (key) out.key = key;
  if (ca) out.ca = ca;
  return out;
}

const TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** One line that says what went wrong on the way to the gateway, and what to pass. */
export function describeTransportError(e: unknown, origin: string, tls: LoadedTls): string {
  const err = e as NodeJS.ErrnoException & { reason?: string };
  const code = err.code ?? '';
  const text = `${code} ${err.message ?? ''}`;
  const hasCert = tls.cert !== undefined;
  const secure = origin.startsWith('https:');
  if (code === 'ECONNREFUSED')
    return `cannot reach the broker at ${origin}: connection refused (is the gateway running? --url or LIAISON_URL)`;
  if (err.message === 'bad port')
    return `cannot reach the broker at ${origin}: fetch refuses that port (the WHATWG list of blocked ports); run the gateway on another one`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return `cannot reach the broker at ${origin}: the host name does not resolve`;
  if (TRUST_CODES.has(code))
    return `the broker's TLS certificate at ${origin} is not trusted (${code}): pass the network CA with --ca FILE or ${CLIENT_TLS_ENV.ca}`;
  if (code === 'CERT_HAS_EXPIRED') return `the broker's TLS certificate at ${origin} has expired`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `the broker's TLS certificate does not name ${new URL(origin).hostname} (${err.reason ?? code})`;
  if (!secure) return `cannot reach the broker at ${origin}: ${code || err.message}`;
  // TLS 1.3: a gateway that requires a certificate sends its alert after the client's handshake, or just resets.
  if (
    /CERTIFICATE_REQUIRED/i.test(text) ||
    (!hasCert && /ECONNRESET|EPIPE|socket hang up|other side closed|UND_ERR_SOCKET|HANDSHAKE_FAILURE/i.test(text))
  ) {
    return hasCert
      ? `the broker at ${origin} refused the client certificate during the TLS handshake (${code || err.message})`
      : `the broker at ${origin} requires a client certificate (mutual TLS): pass --cert FILE --key FILE (or set ${CLIENT_TLS_ENV.cert} and ${CLIENT_TLS_ENV.key})`;
  }
  if (
    /UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|DECRYPT_ERROR|ECONNRESET|EPIPE|socket hang up|other side closed|UND_ERR_SOCKET/i.test(
      text,
    )
  ) {
    return `the broker at ${origin} refused the connection during the TLS handshake (${code || err.message}): is the client certificate issued by the network CA, and not expired?`;
  }
  if (/EPROTO|WRONG_VERSION_NUMBER|packet length too long/i.test(text))
    return `the broker at ${origin} does not speak ${new URL(origin).protocol.replace(':', '')} (${code || err.message}): check the scheme of --url`;
  if (/KEY_VALUES_MISMATCH|PEM|ASN1|NO_START_LINE|bad decrypt/i.test(text))
    return `the client certificate or key cannot be used (${code || err.message}): --cert and --key must be the PEM certificate and its private key`;
  return `cannot reach the broker at ${origin}: ${code || err.message}`;
}

/**
 * A fetch-like function for the gateway at `baseUrl`. With no TLS files it is
 * the same over http and https (the system's trust store, NODE_EXTRA_CA_CERTS);
 * `ca` replaces the trust store, `cert`+`key` are presented to a gateway that
 * asks for them. TLS files with an http:// URL are refused rather than ignored.
 * Files are read once, now.
 */
export function clientFetch(baseUrl: string, files: ClientTlsFiles = {}): FetchLike {
  const tls = load(files);
  const usesTls = tls.cert !== undefined || tls.ca !== undefined;
  let base: URL;
  try {
    base = new URL(baseUrl);
  } catch {
    throw new UsageError(`--url ${baseUrl} is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new UsageError(`--url ${baseUrl}: only http:// and https:// are supported`);
  if (usesTls && base.protocol !== 'https:') {
    throw new UsageError(
      `--cert/--key/--ca (or ${CLIENT_TLS_ENV.cert}, ${CLIENT_TLS_ENV.key}, ${CLIENT_TLS_ENV.ca}) need an https:// --url, not ${base.origin}`,
    );
  }
  const dispatcher = new Agent({ connect: { ...tls, minVersion: 'TLSv1.2' } });
  return async (url, init = {}) => {
    const target = new URL(url);
    try {
      const res = await undiciFetch(target, {
        method: init.method ?? 'GET',
        headers: init.headers ?? {},
        body: init.body ?? null,
        signal: init.signal ?? null,
        dispatcher,
      });
      // undici's Response has the interface of the global one; only the type declarations differ.
      return res;
    } catch (e) {
      if (init.signal?.aborted || (e as Error).name === 'AbortError') throw e;
      throw new HttpClientError(describeTransportError(rootCause(e), target.origin, tls), { cause: e });
    }
  };
}

/** undici rejects with `TypeError: fetch failed` whose cause is the socket's error (or an AggregateError of one per address tried). */
function rootCause(e: unknown): unknown {
  let cause = e instanceof TypeError && e.cause !== undefined ? e.cause : e;
  if (cause instanceof AggregateError && cause.errors.length > 0) cause = cause.errors[0];
  return cause;
}

/** GET/POST that expects a JSON answer; a body that is not JSON becomes a clear error. */
export async function readJson<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new HttpClientError(`${what} answered ${res.status} with a body that is not JSON`);
  }
}

/** A problem answer (RFC 9457) in one line: `403 client-cert-mismatch: title detail`. */
export async function problemLine(res: Response): Promise<string> {
  const body = (await readJson<Record<string, unknown>>(res, 'the broker').catch(() => ({}))) as Record<
    string,
    unknown
  >;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the server's problem fields, whatever they are
  return `${res.status}${body.code ? ` ${String(body.code)}` : ''}${body.title ? `: ${String(body.title)}` : ''}${body.detail ? ` ${String(body.detail)}` : ''}`;
}

/** GET /v1/keys of the gateway at `url`: the broker's JWKS and id (the audience of client assertions). */
export async function fetchBrokerKeys(
  url: string,
  fetch: FetchLike,
): Promise<{ keys: JWK[]; broker: string; openpgp?: string }> {
  const res = await fetch(`${url}/v1/keys`);
  if (!res.ok) throw new HttpClientError(`GET ${url}/v1/keys answered ${await problemLine(res)}`);
  return readJson<{ keys: JWK[]; broker: string; openpgp?: string }>(res, `GET ${url}/v1/keys`);
}
