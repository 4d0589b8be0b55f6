/**
 * `liaison notice seal` and `liaison notice withdraw`, and what they share with
 * `notice send`: stamping a sample, sealing a notice to the broker (sign with
 * the agency's key, encrypt to the broker's), posting the envelope and printing
 * the receipt or the refusal.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { brokerEncryptionKey, sealNotice } from '../agency-client/seal.js';
import {
  clientFetch,
  clientTlsFromArgs,
  clientTlsOptions,
  fetchBrokerKeys,
  readJson,
  type FetchLike,
} from '../agency-client/http.js';
import { fetchOwnNotice, type OwnNoticeEntry } from '../agency-client/own-notice.js';
import { retrying, SEND_RETRY } from '../agency-client/retry.js';
import { buildWithdrawal, rfc3339 } from '../agency-client/withdrawal.js';
import { atLeastAsStrict, isTlp } from '../core/tlp.js';
import { isSlug, isUuid } from '../core/ids.js';
import { E2E_MEDIA_TYPE, fetchOperationDirectory, recipientKeys, sealEndToEnd } from '../agency-client/end-to-end.js';
import { E2E_PGP_MEDIA_TYPE, recipientCertificates, sealEndToEndOpenPgp } from '../agency-client/end-to-end-openpgp.js';
import type { AgencyCredentials } from '../agency-client/credentials.js';
import { credentialsFor } from '../demo/demo-network.js';
import { readInputFile, readInputJson } from './input-file.js';
import { UsageError } from '../core/usage-error.js';
import type { Io } from './liaison.js';

export const baseUrl = (v?: string) => (v ?? process.env.LIAISON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** parseArgs options shared by the commands that seal a notice. */
export const sealingOptions = {
  as: { type: 'string' },
  url: { type: 'string' },
  'data-dir': { type: 'string' },
  credentials: { type: 'string' },
  alg: { type: 'string', default: 'ECDH-ES+A256KW' },
  curve: { type: 'string', default: 'X25519' },
  ...clientTlsOptions,
} as const;

type KeyManagement = 'ECDH-ES+A256KW' | 'ECDH-ES';
type Curve = 'X25519' | 'P-256';

/** --alg and --curve, checked. */
export function sealingChoice(values: { alg?: string | undefined; curve?: string | undefined }): {
  alg: KeyManagement;
  curve: Curve;
} {
  if (values.alg !== 'ECDH-ES+A256KW' && values.alg !== 'ECDH-ES')
    throw new UsageError('--alg must be ECDH-ES+A256KW or ECDH-ES');
  if (values.curve !== 'X25519' && values.curve !== 'P-256') throw new UsageError('--curve must be X25519 or P-256');
  return { alg: values.alg, curve: values.curve };
}

/**
 * A sample made sendable now, as the agency of `creds`: a fresh id, created_at
 * now, expires_at moved by as much as created_at (the validity period is kept),
 * origin = the agency. Nothing else changes.
 */
export function stampNotice(
  notice: Record<string, unknown>,
  creds: Pick<AgencyCredentials, 'agency' | 'country'>,
  now: Date,
  id: string = randomUUID(),
): Record<string, unknown> {
  const out = { ...notice };
  if (typeof notice.expires_at === 'string' && typeof notice.created_at === 'string') {
    const span = Date.parse(notice.expires_at) - Date.parse(notice.created_at);
    if (Number.isFinite(span)) out.expires_at = rfc3339(new Date(now.getTime() + span));
  }
  out.id = id;
  out.created_at = rfc3339(now);
  if (typeof notice.origin === 'object' && notice.origin)
    out.origin = { ...notice.origin, agency: creds.agency, country: creds.country };
  return out;
}

/** The notice bytes to seal: FILE as it is, or stamped (--stamp). */
export function noticeBytes(file: string, stamp: boolean, creds: AgencyCredentials): Uint8Array {
  if (!stamp) return readInputFile(file);
  let notice: unknown;
  try {
    notice = readInputJson(file);
  } catch (e) {
    throw new Error(`--stamp: ${(e as Error).message}`);
  }
  if (notice === null || typeof notice !== 'object' || Array.isArray(notice))
    throw new Error(`--stamp: ${file} does not hold a JSON object`);
  return new TextEncoder().encode(
    JSON.stringify(stampNotice(notice as Record<string, unknown>, creds, new Date()), null, 2),
  );
}

/** The gateway of a command: its URL, a fetch with the command's TLS files, and its keys. */
export async function gatewayOf(values: {
  url?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
}) {
  const url = baseUrl(values.url);
  const fetch = clientFetch(url, clientTlsFromArgs(values));
  const jwks = await fetchBrokerKeys(url, fetch);
  return { url, fetch, jwks };
}

/** Sign `bytes` with the agency's key and encrypt it to the broker's key of `curve`: the compact JWE `notice send` posts. */
export async function sealFor(
  bytes: Uint8Array,
  creds: AgencyCredentials,
  jwks: Awaited<ReturnType<typeof gatewayOf>>['jwks'],
  choice: { alg: KeyManagement; curve: Curve },
): Promise<string> {
  const { jwe } = await sealNotice(bytes, {
    signingKey: creds.signing,
    brokerKey: brokerEncryptionKey(jwks, choice.curve),
    keyManagement: choice.alg,
  });
  return jwe;
}

/**
 * The envelope `notice send` posts, and its media type: sealed end to end for
 * the recipients' keys when the notice's operation is end to end (the member
 * directory says so): in OpenPGP when the agency's credentials hold an
 * OpenPGP key and every recipient has an OpenPGP certificate, else in JOSE
 * (`form` forces one: a withdrawal takes the form of the notice it
 * supersedes); otherwise to the broker (sealFor).
 */
export async function sealForOperation(
  bytes: Uint8Array,
  creds: AgencyCredentials,
  gateway: Awaited<ReturnType<typeof gatewayOf>>,
  choice: { alg: KeyManagement; curve: Curve },
  io: Io,
  form?: 'jose-e2e' | 'openpgp-e2e',
): Promise<{ envelope: string; contentType: string }> {
  let notice: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (v && typeof v === 'object' && !Array.isArray(v)) notice = v as Record<string, unknown>;
  } catch {
    notice = undefined;
  }
  const operation = notice?.operation;
  const directory =
    notice && typeof operation === 'string' && isSlug(operation)
      ? await fetchOperationDirectory(
          gateway.url,
          gateway.fetch,
          creds.agency,
          creds.signing,
          gateway.jwks.broker,
          operation,
        )
      : undefined;
  if (!notice || !directory?.end_to_end)
    return { envelope: await sealFor(bytes, creds, gateway.jwks, choice), contentType: 'application/jose' };
  // An agency with an OpenPGP key seals the OpenPGP form when every recipient has a certificate for it.
  if (form === 'openpgp-e2e' && !creds.openpgp)
    throw new Error('cannot seal end to end in OpenPGP: the credentials hold no OpenPGP key');
  if (creds.openpgp && form !== 'jose-e2e') {
    let certs;
    try {
      certs = await recipientCertificates(notice, directory);
    } catch (e) {
      if (form === 'openpgp-e2e') throw new Error(`cannot seal end to end in OpenPGP: ${(e as Error).message}`);
      io.err(`not sealing in OpenPGP: ${(e as Error).message}\n`);
    }
    if (certs) {
      const { envelope } = await sealEndToEndOpenPgp(notice, creds.openpgp.private_armored, certs, { raw: bytes });
      io.err(
        `operation ${directory.operation} is end to end: sealed in OpenPGP for ${certs.map((r) => r.agency).join(', ')} (the hub cannot read it)\n`,
      );
      return { envelope, contentType: E2E_PGP_MEDIA_TYPE };
    }
  }
  let recipients;
  try {
    recipients = recipientKeys(notice, directory);
  } catch (e) {
    throw new Error(`cannot seal end to end: ${(e as Error).message}`);
  }
  const { envelope } = await sealEndToEnd(notice, creds.signing, recipients, { raw: bytes });
  io.err(
    `operation ${directory.operation} is end to end: sealed for ${recipients.map((r) => r.agency).join(', ')} (the hub cannot read it)\n`,
  );
  return { envelope, contentType: E2E_MEDIA_TYPE };
}

/** POST the envelope and print the receipt (or the refusal, with its code and the schema errors); 0 when accepted, 1 when refused. */
export async function postEnvelope(
  url: string,
  fetch: FetchLike,
  jwe: string,
  io: Io,
  json: boolean,
  contentType = 'application/jose',
): Promise<number> {
  // The same sealed envelope again is safe: the notice id is the dedupe key.
  const res = await retrying(fetch, { ...SEND_RETRY, report: (line) => io.err(`${line}\n`) })(`${url}/v1/notices`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: jwe,
  });
  const body = await readJson<Record<string, unknown>>(res, `POST ${url}/v1/notices`);
  if (json) {
    io.out(JSON.stringify({ status: res.status, ...body }, null, 2) + '\n');
  } else if (res.status === 202) {
    io.out(
      `accepted: notice ${String(body.notice_id)} at log index ${String(body.log_index)}, received ${String(body.received_at)}\n` +
        `recipients: ${(body.recipients as string[]).join(', ')}\nreceipt: ${String(body.receipt)}\n`,
    );
  } else {
    /* eslint-disable @typescript-eslint/no-base-to-string -- the server's problem fields, whatever they are */
    io.out(
      `refused (${res.status} ${String(body.code)}): ${String(body.title)}${body.detail ? ` ${String(body.detail)}` : ''}\n`,
    );
    /* eslint-enable @typescript-eslint/no-base-to-string */
    for (const e of (body.errors as { path: string; message: string }[] | undefined) ?? [])
      io.out(`  ${e.path}: ${e.message}\n`);
  }
  return res.status === 202 ? 0 : 1;
}

/** liaison notice seal FILE --as AGENCY: print the envelope `notice send` would post, and post nothing. */
export async function noticeSeal(args: string[], io: Io): Promise<number | void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...sealingOptions, stamp: { type: 'boolean' } },
  });
  const file = positionals[0];
  if (!file) throw new UsageError('needs a FILE (a notice JSON)');
  if (positionals.length > 1) throw new UsageError(`takes one FILE, not ${positionals.length}`);
  const creds = credentialsFor(values);
  const choice = sealingChoice(values);
  const bytes = noticeBytes(file, values.stamp === true, creds);
  const { jwks } = await gatewayOf(values);
  const jwe = await sealFor(bytes, creds, jwks, choice);
  const id = (() => {
    try {
      return String((JSON.parse(new TextDecoder().decode(bytes)) as { id?: unknown }).id);
    } catch {
      return '(not JSON)';
    }
  })();
  io.err(`notice ${id} signed by ${creds.agency} and encrypted to the broker (${choice.alg}, ${choice.curve})\n`);
  io.out(`${jwe}\n`);
}

const PRIORITIES = ['low', 'normal', 'high', 'urgent'];
const LANGUAGE = /^[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{1,8})*$/;
const POLL_MS = 500;

/** The original's log entry, waiting up to `waitSeconds` for a checkpoint to cover it. */
async function originalEntry(
  lookup: () => Promise<OwnNoticeEntry | undefined>,
  noticeId: string,
  waitSeconds: number,
  io: Io,
): Promise<OwnNoticeEntry> {
  const deadline = Date.now() + waitSeconds * 1000;
  for (let told = false; ; told = true) {
    const entry = await lookup();
    if (entry) return entry;
    if (Date.now() >= deadline) {
      throw new Error(
        `no notice of yours with id ${noticeId} is in the signed log${waitSeconds > 0 ? ` (waited ${waitSeconds} s for a checkpoint)` : ''}: check the id and --as, or wait for the next checkpoint and try again`,
      );
    }
    if (!told) io.err(`waiting for a checkpoint to cover notice ${noticeId} (up to ${waitSeconds} s)\n`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * liaison notice withdraw NOTICE_ID --as AGENCY --reason TEXT [--correction TEXT]:
 * build a withdrawal (or correction) of one of the agency's notices from its
 * log entry, sign, seal and post it as `notice send` does (end to end in an
 * end-to-end operation, addressed to the original's recipients), print the
 * receipt.
 */
export async function noticeWithdraw(args: string[], io: Io): Promise<number | void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...sealingOptions,
      reason: { type: 'string' },
      correction: { type: 'string' },
      summary: { type: 'string' },
      language: { type: 'string', default: 'en' },
      priority: { type: 'string', default: 'high' },
      tlp: { type: 'string' },
      wait: { type: 'string', default: '30' },
      json: { type: 'boolean' },
    },
  });
  const noticeId = positionals[0];
  if (!noticeId) throw new UsageError('needs the NOTICE_ID of the notice to withdraw (as notice send printed it)');
  if (positionals.length > 1) throw new UsageError(`takes one NOTICE_ID, not ${positionals.length}`);
  if (!isUuid(noticeId)) throw new UsageError(`${String(noticeId)} is not a notice id (a lower-case UUID)`);
  const blank = (v: string | undefined) => v !== undefined && !/\S/.test(v);
  if (values.reason === undefined || blank(values.reason))
    throw new UsageError('needs --reason TEXT: why the notice is withdrawn or corrected');
  if (blank(values.correction)) throw new UsageError('--correction must say what changes');
  if (blank(values.summary)) throw new UsageError('--summary must not be blank');
  if (!PRIORITIES.includes(values.priority)) throw new UsageError(`--priority must be one of ${PRIORITIES.join(', ')}`);
  if (!LANGUAGE.test(values.language)) throw new UsageError('--language must be a BCP 47 tag, e.g. en, vi, fr');
  if (values.tlp !== undefined && !isTlp(values.tlp))
    throw new UsageError('--tlp must be CLEAR, GREEN, AMBER, AMBER+STRICT or RED');
  if (!/^\d{1,4}$/.test(values.wait)) throw new UsageError('--wait must be a number of seconds (0 to 9999)');
  const creds = credentialsFor(values);
  const choice = sealingChoice(values);

  const { url, fetch, jwks } = await gatewayOf(values);
  const original = await originalEntry(
    () => fetchOwnNotice(url, fetch, creds, jwks.broker, noticeId),
    noticeId,
    Number(values.wait),
    io,
  );
  if (original.type === 'withdrawal')
    throw new Error(`notice ${noticeId} is itself a withdrawal: withdraw or correct the original notice instead`);
  const tlp = values.tlp ?? original.tlp;
  if (!atLeastAsStrict(tlp, original.tlp))
    throw new UsageError(
      `--tlp ${tlp} is less strict than the notice's TLP:${original.tlp}; a withdrawal is at least as restricted`,
    );

  const notice = buildWithdrawal({
    id: randomUUID(),
    supersedes: noticeId,
    origin: { agency: creds.agency, country: creds.country },
    operation: original.operation,
    tlp,
    recipients: original.recipients,
    reason: values.reason,
    correction: values.correction,
    summary: values.summary,
    language: values.language,
    priority: values.priority,
    now: new Date(),
  });
  // In an end-to-end operation the withdrawal is sealed for the original's recipients (its log entry, which the
  // hub checks the body against), in the original's form: the hub never reads the reason or the correction.
  const form = original.format === 'jose-e2e' || original.format === 'openpgp-e2e' ? original.format : undefined;
  const { envelope, contentType } = await sealForOperation(
    new TextEncoder().encode(JSON.stringify(notice)),
    creds,
    { url, fetch, jwks },
    choice,
    io,
    form,
  );
  return postEnvelope(url, fetch, envelope, io, values.json === true, contentType);
}
