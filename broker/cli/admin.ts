/** `liaison admin ...`: the admin API (key lifecycle, agency and operation records) from the command line (role operator). */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { readKey } from 'openpgp';
import { makeClientAssertion } from '../agency-client/assertion.js';
import {
  clientFetch,
  clientTlsFromArgs,
  clientTlsOptions,
  fetchBrokerKeys,
  HttpClientError,
  problemLine,
  readJson,
  type FetchLike,
} from '../agency-client/http.js';
import { ADMIN_RETRY, retrying } from '../agency-client/retry.js';
import { readInputJson } from './input-file.js';
import { credentialsFor } from '../demo/demo-network.js';
import { publicPart } from '../keys/jwk.js';
import { UsageError } from '../core/usage-error.js';
import type { Io } from './liaison.js';

export const ADMIN_HELP = `  liaison admin rotate-encryption-keys --as OPERATOR [--grace SECONDS] [--reason TEXT]
      Rotate the broker's encryption keys: new keys are published at once on
      every gateway; the previous ones keep decrypting for the grace period.
  liaison admin rotate-signing-key --as OPERATOR [--reason TEXT]
      Rotate the broker's signing key (receipts, checkpoints, webhooks); the old
      key stays in GET /v1/keys and /v1/keys/history.
  liaison admin rotate-storage-key --as OPERATOR [--reason TEXT]
      Rotate the broker's storage key (notices sealed at rest): stored notice
      keys are re-wrapped under the new one, and the old one is dropped once
      nothing needs it.
  liaison admin add-key --as OPERATOR --agency ID --new-key FILE [--use sig|enc] [--not-before T] [--not-after T]
      Register a key for an agency. FILE: a public JWK, an agency credentials
      file from \`liaison keys generate\` (only public parts are sent), or an
      armored OpenPGP public key (.asc).
  liaison admin rotate-key --as OPERATOR --agency ID --kid OLD --new-key FILE [--overlap SECONDS]
      Register the successor of key OLD; OLD stays valid for the overlap.
  liaison admin revoke-key --as OPERATOR --agency ID --kid KID [--at TIME] [--reason TEXT]
      Revoke an agency key on every gateway at once (or at TIME, not in the past).
  liaison admin get-agency --as OPERATOR --agency ID
  liaison admin get-operation --as OPERATOR --operation ID
      Print the record as stored (JSON), to edit and set again.
  liaison admin get-registry --as OPERATOR
      Print the whole registry as a seed file (JSON): for \`liaison nats creds\`
      and \`liaison nats consumers\` after agencies joined, or as a record.
  liaison admin set-agency --as OPERATOR --file FILE [--reason TEXT]
      Create the agency in FILE (a registry record, e.g. as \`liaison keys
      generate\` prints it: its keys are its first keys), or replace an existing
      agency's record (name, roles, webhook, delivery_format, certificates); an
      existing agency's keys change only through add-key, rotate-key, revoke-key.
  liaison admin set-operation --as OPERATOR --file FILE [--reason TEXT]
      Create the operation in FILE, or replace its record: members (each a
      registered agency; one left out leaves the operation), status, dates.
  liaison admin erase NOTICE_ID --as OPERATOR --reason TEXT
      Erase a notice: its key is destroyed (crypto-shredding) and its content
      purged (stored notice, pending deliveries, webhook dead letters); its
      recipients get a broker-signed erasure record; the log and every proof
      still verify and the id stays taken. One event per notice: asking again
      completes a half-done erasure and prints the same event.
  liaison admin review-due --as OPERATOR [--limit N] [--json]
      List the notices (not erased) whose review date has passed: received +
      the review_days of their operation, or the network default (reviewDays).

  Every admin change is a broker-signed registry event in the log; the command
  prints the event id and log index (--json: the whole answer). It sends an
  idempotency id (--id UUID to give one) and retries an unanswered or 503
  request with the same id, so a change is made once. Credentials: --as AGENCY
  (an agency with the operator role) from --data-dir, or --credentials FILE;
  --url, --cert/--key/--ca as for other commands.
`;

const common = {
  ...clientTlsOptions,
  as: { type: 'string' },
  credentials: { type: 'string' },
  'data-dir': { type: 'string' },
  url: { type: 'string' },
  json: { type: 'boolean' },
  reason: { type: 'string' },
  id: { type: 'string' },
} as const;

type Values = {
  cert?: string;
  key?: string;
  ca?: string;
  as?: string;
  credentials?: string;
  'data-dir'?: string;
  url?: string;
  json?: boolean;
  reason?: string;
  id?: string;
};

async function connect(values: Values) {
  const creds = credentialsFor(values);
  const url = (values.url ?? process.env.LIAISON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const fetch = clientFetch(url, clientTlsFromArgs(values));
  const { broker } = await fetchBrokerKeys(url, fetch);
  return { creds, url, fetch, broker };
}

/** GET an admin resource and print it (JSON). */
async function get(values: Values, path: string, io: Io): Promise<number> {
  const { creds, url, fetch, broker } = await connect(values);
  const token = await makeClientAssertion(creds.agency, creds.signing, broker);
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    io.err(`refused: ${await problemLine(res)}\n`);
    return 1;
  }
  io.out(`${JSON.stringify(await readJson<unknown>(res, `GET ${url}${path}`), null, 2)}\n`);
  return 0;
}

/** Send one admin change (POST, or PUT for a record) with an idempotency id, retried with it; print the recorded event. */
async function send(
  values: Values,
  path: string,
  body: Record<string, unknown>,
  io: Io,
  method: 'POST' | 'PUT' = 'POST',
  /** False where the broker derives the event id itself (erase: one event per notice). */
  withId = true,
): Promise<number> {
  const { creds, url, fetch, broker } = await connect(values);
  const id = values.id ?? randomUUID();
  const payload = JSON.stringify({
    ...(withId ? { id } : {}),
    ...(values.reason !== undefined ? { reason: values.reason } : {}),
    ...body,
  });
  // A fresh assertion on every try (the gateway accepts each once); the same id, so the broker makes the change once.
  const authorized: FetchLike = async (target, init = {}) =>
    fetch(target, {
      ...init,
      headers: {
        ...init.headers,
        authorization: `Bearer ${await makeClientAssertion(creds.agency, creds.signing, broker)}`,
      },
    });
  let res: Response;
  try {
    res = await retrying(authorized, { ...ADMIN_RETRY, report: (line) => io.err(`${line}\n`) })(`${url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: payload,
    });
  } catch (e) {
    const retry = withId ? `; retry with --id ${id}` : '; retry (it is idempotent)';
    if (e instanceof HttpClientError) throw new Error(`no answer from ${url}: ${e.message}${retry}`);
    throw e;
  }
  if (res.status === 503)
    throw new Error(`the gateway answered 503; retry later${withId ? ` with --id ${id}` : ' (it is idempotent)'}`);
  if (!res.ok) {
    io.err(`refused: ${await problemLine(res)}\n`);
    return 1;
  }
  const answer = await readJson<Record<string, unknown>>(res, `${method} ${url}${path}`);
  io.out(
    values.json
      ? `${JSON.stringify(answer, null, 2)}\n`
      : `${String(answer.type)}: event ${String(answer.event_id)} at log index ${String(answer.log_index)}${answer.duplicate ? ' (already recorded)' : ''}\n`,
  );
  return 0;
}

/** The key in FILE as the admin API takes it. */
export async function readNewKey(file: string, use?: string): Promise<Record<string, unknown>> {
  const text = readFileSync(file, 'utf8');
  if (text.includes('-----BEGIN PGP')) {
    const key = await readKey({ armoredKey: text });
    return {
      kid: key.getFingerprint().toUpperCase(),
      use: use ?? 'sig',
      format: 'openpgp',
      armored: key.toPublic().armor(),
    };
  }
  let jwk: JWK;
  try {
    const parsed = JSON.parse(text) as JWK & { signing?: JWK; encryption?: JWK };
    // An agency credentials file (liaison keys generate): take the key of the use asked for.
    jwk = parsed.kty ? parsed : ((use === 'enc' ? parsed.encryption : parsed.signing) as JWK);
  } catch {
    throw new Error(`${file}: neither a JWK nor an armored OpenPGP key`);
  }
  if (!jwk?.kty) throw new Error(`${file}: no key for use ${use ?? 'sig'}`);
  const pub = publicPart(jwk);
  const kid = pub.kid ?? (await calculateJwkThumbprint(pub));
  const keyUse = use ?? pub.use ?? (pub.crv === 'X25519' ? 'enc' : 'sig');
  const { kty, crv, x, y } = pub;
  return { kid, use: keyUse, jwk: { kty, crv, x, ...(y ? { y } : {}) } };
}

/** A registry record from FILE (as get-agency or get-operation print it, or a seed's); the broker's own `changed_by` dropped. */
function readRecord(file: string): Record<string, unknown> {
  const parsed = readInputJson(file);
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    Array.isArray(parsed) ||
    typeof (parsed as { id?: unknown }).id !== 'string'
  )
    throw new Error(`${file}: not a registry record (a JSON object with an id)`);
  const { changed_by: _, ...record } = parsed as Record<string, unknown>;
  return record;
}

/** A registry key (keys or openpgp_keys of a record) as the admin API takes a new key: public parts, window, no status. */
function asNewKey(k: Record<string, unknown>): Record<string, unknown> {
  const { status: _s, revoked_at: _r, ...rest } = k;
  if (rest.jwk && typeof rest.jwk === 'object') {
    const { kty, crv, x, y } = rest.jwk as Record<string, unknown>;
    rest.jwk = { kty, crv, x, ...(y ? { y } : {}) };
  }
  return rest;
}

const seconds = (v: string | undefined, what: string) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${what} must be a whole number of seconds`);
  return n;
};

const need = (v: string | undefined, what: string) => {
  if (!v) throw new UsageError(`needs ${what}`);
  return v;
};

const enc = encodeURIComponent;

export const adminCommands: Record<string, (args: string[], io: Io) => Promise<number>> = {
  async 'admin rotate-encryption-keys'(args, io) {
    const { values } = parseArgs({ args, options: { ...common, grace: { type: 'string' } } });
    const grace = seconds(values.grace, '--grace');
    return send(
      values,
      '/v1/admin/broker/keys/encryption/rotate',
      grace === undefined ? {} : { grace_seconds: grace },
      io,
    );
  },
  async 'admin rotate-signing-key'(args, io) {
    const { values } = parseArgs({ args, options: common });
    return send(values, '/v1/admin/broker/keys/signing/rotate', {}, io);
  },
  async 'admin rotate-storage-key'(args, io) {
    const { values } = parseArgs({ args, options: common });
    return send(values, '/v1/admin/broker/keys/storage/rotate', {}, io);
  },
  async 'admin add-key'(args, io) {
    const { values } = parseArgs({
      args,
      options: {
        ...common,
        agency: { type: 'string' },
        'new-key': { type: 'string' },
        use: { type: 'string' },
        'not-before': { type: 'string' },
        'not-after': { type: 'string' },
      },
    });
    const key = await readNewKey(need(values['new-key'], '--new-key FILE'), values.use);
    if (values['not-before']) key.not_before = values['not-before'];
    if (values['not-after']) key.not_after = values['not-after'];
    return send(values, `/v1/admin/agencies/${enc(need(values.agency, '--agency ID'))}/keys`, { key }, io);
  },
  async 'admin rotate-key'(args, io) {
    const { values } = parseArgs({
      args,
      options: {
        ...common,
        agency: { type: 'string' },
        kid: { type: 'string' },
        'new-key': { type: 'string' },
        use: { type: 'string' },
        overlap: { type: 'string' },
      },
    });
    const key = await readNewKey(need(values['new-key'], '--new-key FILE'), values.use);
    const overlap = seconds(values.overlap, '--overlap');
    return send(
      values,
      `/v1/admin/agencies/${enc(need(values.agency, '--agency ID'))}/keys/${enc(need(values.kid, '--kid OLD'))}/rotate`,
      { key, ...(overlap === undefined ? {} : { overlap_seconds: overlap }) },
      io,
    );
  },
  async 'admin revoke-key'(args, io) {
    const { values } = parseArgs({
      args,
      options: { ...common, agency: { type: 'string' }, kid: { type: 'string' }, at: { type: 'string' } },
    });
    return send(
      values,
      `/v1/admin/agencies/${enc(need(values.agency, '--agency ID'))}/keys/${enc(need(values.kid, '--kid KID'))}/revoke`,
      values.at ? { revoked_at: values.at } : {},
      io,
    );
  },
  async 'admin get-agency'(args, io) {
    const { values } = parseArgs({ args, options: { ...common, agency: { type: 'string' } } });
    return get(values, `/v1/admin/agencies/${enc(need(values.agency, '--agency ID'))}`, io);
  },
  async 'admin get-operation'(args, io) {
    const { values } = parseArgs({ args, options: { ...common, operation: { type: 'string' } } });
    return get(values, `/v1/admin/operations/${enc(need(values.operation, '--operation ID'))}`, io);
  },
  async 'admin get-registry'(args, io) {
    const { values } = parseArgs({ args, options: common });
    return get(values, '/v1/admin/registry', io);
  },
  async 'admin set-agency'(args, io) {
    const { values } = parseArgs({ args, options: { ...common, file: { type: 'string' } } });
    const { keys, openpgp_keys, ...agency } = readRecord(need(values.file, '--file FILE'));
    const all = [
      ...(Array.isArray(keys) ? (keys as unknown[]) : []),
      ...(Array.isArray(openpgp_keys) ? (openpgp_keys as unknown[]) : []),
    ] as Record<string, unknown>[];
    return send(
      values,
      `/v1/admin/agencies/${enc(String(agency.id))}`,
      { agency, ...(all.length > 0 ? { keys: all.map(asNewKey) } : {}) },
      io,
      'PUT',
    );
  },
  async 'admin set-operation'(args, io) {
    const { values } = parseArgs({ args, options: { ...common, file: { type: 'string' } } });
    const operation = readRecord(need(values.file, '--file FILE'));
    return send(values, `/v1/admin/operations/${enc(String(operation.id))}`, { operation }, io, 'PUT');
  },
  async 'admin erase'(args, io) {
    const { values, positionals } = parseArgs({ args, options: common, allowPositionals: true });
    if (positionals.length !== 1) throw new UsageError('needs one NOTICE_ID');
    if (values.id !== undefined)
      throw new UsageError('--id is not taken: the erasure event id is derived from the notice id');
    need(values.reason, '--reason TEXT');
    return send(values, `/v1/admin/notices/${enc(positionals[0]!)}/erase`, {}, io, 'POST', false);
  },
  async 'admin review-due'(args, io) {
    const { values } = parseArgs({ args, options: { ...common, limit: { type: 'string' } } });
    if (values.limit !== undefined && !/^[1-9][0-9]{0,3}$/.test(values.limit))
      throw new UsageError('--limit must be a whole number from 1 to 9999');
    const { creds, url, fetch, broker } = await connect(values);
    const path = `/v1/admin/notices/review-due${values.limit ? `?limit=${values.limit}` : ''}`;
    const token = await makeClientAssertion(creds.agency, creds.signing, broker);
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) {
      io.err(`refused: ${await problemLine(res)}\n`);
      return 1;
    }
    const { notices } = await readJson<{ notices: Record<string, unknown>[] }>(res, `GET ${url}${path}`);
    if (values.json) io.out(`${JSON.stringify(notices, null, 2)}\n`);
    else {
      for (const n of notices)
        io.out(
          `${String(n.notice_id)} ${String(n.operation)} ${String(n.type)} log ${String(n.log_index)} received ${String(n.received_at)} review due ${String(n.review_at)}\n`,
        );
      io.out(`${notices.length} notice${notices.length === 1 ? '' : 's'} due for review\n`);
    }
    return 0;
  },
};
