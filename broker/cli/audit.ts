/**
 * `liaison audit verify` and `liaison audit export` (wired into broker/cli/liaison.ts).
 *
 *   audit verify --archive FILE [--decrypt-with JWK_FILE] [--json]
 *   audit verify --url URL --as AGENCY [--data-dir DIR | --credentials FILE] [--state FILE] [--json] [--cert FILE --key FILE] [--ca FILE]
 *   audit export [--nats URL] [--data-dir DIR] [--origin ID] --out FILE [--encrypt-to KEYFILE]   (NATS credentials: NATS_USER/NATS_PASSWORD_FILE..., as the gateway; else the data dir's local nats-server URL and broker user)
 *
 * Exit 0 when everything verifies, 1 when anything does not (the first bad
 * entry is named), 2 on a usage error.
 */

import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { readInputJson } from './input-file.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../core/usage-error.js';
import type { JWK } from 'jose';
import { createMessage, encrypt, readKey, type PublicKey } from 'openpgp';
import { brokerOpenPgpKeysFromFile, OPENPGP_KEY_FILE, type BrokerOpenPgpKeyFile } from '../keys/openpgp-keys.js';

import { makeClientAssertion } from '../agency-client/assertion.js';
import {
  clientFetch,
  clientTlsFromArgs,
  clientTlsOptions,
  fetchBrokerKeys,
  problemLine,
  readJson,
} from '../agency-client/http.js';
import { createLogger } from '../core/logger.js';
import { credentialsFor } from '../demo/demo-network.js';
import { publicPart } from '../keys/jwk.js';
import { storageKeysOf } from '../keys/broker-keys.js';
import { connectNats } from '../nats/connection.js';
import { cliNatsAuth, cliNatsUrl } from '../nats/creds-files.js';
import { archiveToAuditInput } from '../audit/archive.js';
import { exportArchive, fetchFromApi } from '../audit/export.js';
import { auditorKeyRefusal, openContentsWith, sealContentsTo } from '../audit/sealed-notices.js';
import { auditLogWithOrigins } from '../audit/key-history.js';
import { auditLogOnAllCores } from '../audit/verify-all-cores.js';
import { type AuditReport, type Progress } from '../audit/verify.js';
import type { Io } from './liaison.js';

function progressBar(io: Io, label: string): Progress | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    io.err(
      `\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`,
    );
  };
}

function summary(r: AuditReport, seconds: number): string {
  const lines = [
    `entries:     ${r.entries} replayed (${seconds > 0 ? Math.round(r.entries / seconds) : r.entries} entries/s)`,
    `checkpoints: ${r.checkpointsValid} of ${r.checkpoints} verify; tree verified up to size ${r.verifiedTreeSize}${r.verifiedRoot ? ` (root ${r.verifiedRoot})` : ''}`,
    r.noticesNotFetched === undefined
      ? `notices:     ${r.noticesChecked} held and checked against their commitments, ${r.noticesErased} erased (commitment only)`
      : `notices:     ${r.noticesNotFetched} notice entries; contents not fetched (the API serves commitments only): not checked against the notices`,
  ];
  if (r.noticesMissing > 0)
    lines.push(
      `missing:     ${r.noticesMissing} notices whose content is gone and which no erasure event names (notice-content-missing)`,
    );
  if (r.erasures.length > 0) {
    lines.push(`erased:      ${r.erasures.length} notices erased by a logged notice-erased event (commitment kept)`);
    for (const e of r.erasures) lines.push(`  notice ${e.notice_id} erased by event ${e.event_id} (entry ${e.index})`);
  }
  lines.push(
    r.entriesSigned === undefined
      ? 'entry sigs:  the evidence carries no entry signatures (an archive before format 3): not checked'
      : `entry sigs:  ${r.entriesSigned} entries signed by the gateway and verified against the broker key history${r.entriesUnsignedLegacy ? `, ${r.entriesUnsignedLegacy} leading entries unsigned (written before entry signatures, under a checkpoint)` : ''}`,
  );
  lines.push(
    r.complaintsChecked === undefined
      ? `complaints:  ${r.complaints} complaint entries; the complaints are not in the evidence (an archive without contents, or before format 4): not checked`
      : `complaints:  ${r.complaints} complaint entries, ${r.complaintsChecked} complaints checked against them; ${r.complaintSignaturesChecked === undefined ? 'recipient signatures not checked (no agency key history in the evidence)' : `${r.complaintSignaturesChecked} recipient signatures checked against the agency key history`}`,
  );
  if (r.registryEventsChecked !== undefined) {
    lines.push(
      `registry:    ${r.registryEventsChecked} registry events (key, agency and operation changes) checked against their entries and the broker key history`,
    );
  }
  if (r.signaturesChecked !== undefined) {
    lines.push(
      `signatures:  ${r.signaturesChecked} origin signatures checked against the agency key history${r.signaturesNotChecked ? `, ${r.signaturesNotChecked} not checked` : ''}`,
    );
  }
  for (const p of r.problems) lines.push(`PROBLEM ${p.code}: ${p.message}`);
  if (r.firstBadEntry !== undefined) lines.push(`first bad entry: ${r.firstBadEntry}`);
  lines.push(r.ok ? 'the log verifies' : 'the log does NOT verify');
  return lines.join('\n') + '\n';
}

/** An archive whose notices were encrypted to the auditor: opened with the auditor's private JWK (else they count as not fetched). */
async function withNotices(raw: unknown, keyFile: string | undefined): Promise<unknown> {
  if (!keyFile) return raw;
  const jwk = readInputJson(keyFile);
  const refusal = auditorKeyRefusal(jwk, true);
  if (refusal) throw new UsageError(`--decrypt-with ${keyFile}: ${refusal}`);
  const a = raw as { notices_jwe?: unknown };
  if (typeof a?.notices_jwe !== 'string')
    throw new UsageError('--decrypt-with: the archive holds no encrypted notices');
  let contents: Awaited<ReturnType<typeof openContentsWith>>;
  try {
    contents = await openContentsWith(jwk as JWK, a.notices_jwe);
  } catch (e) {
    throw new Error(`--decrypt-with ${keyFile}: the archive's notices do not open (${(e as Error).message})`);
  }
  return { ...(raw as object), ...contents };
}

export async function auditVerify(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      archive: { type: 'string' },
      'decrypt-with': { type: 'string' },
      url: { type: 'string' },
      as: { type: 'string' },
      'data-dir': { type: 'string' },
      credentials: { type: 'string' },
      state: { type: 'string' },
      json: { type: 'boolean' },
      ...clientTlsOptions,
    },
  });
  const started = Date.now();
  let report: AuditReport;
  if (values.archive) {
    report = await auditLogWithOrigins(
      archiveToAuditInput(await withNotices(readInputJson(values.archive), values['decrypt-with'])),
      progressBar(io, 'replaying'),
    );
  } else {
    if (!values.as && !values.credentials)
      throw new UsageError('needs --archive FILE, or --url with --as AGENCY (auditor credentials)');
    const url = (values.url ?? process.env.LIAISON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    const creds = credentialsFor(values);
    const fetch = clientFetch(url, clientTlsFromArgs(values));
    const jwks = await fetchBrokerKeys(url, fetch);
    const get = async (path: string) => {
      const token = await makeClientAssertion(creds.agency, creds.signing, jwks.broker);
      const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      // Refused credentials (token or client certificate) stop the run with the gateway's problem code.
      if (res.status === 401 || res.status === 403)
        throw new Error(`GET ${url}${path} answered ${await problemLine(res)}`);
      return { status: res.status, json: await readJson<Record<string, unknown>>(res, `GET ${url}${path}`) };
    };
    // Checkpoints seen in earlier runs: the hub must stay consistent with what it showed before.
    const known =
      values.state && existsSync(values.state)
        ? ((JSON.parse(readFileSync(values.state, 'utf8')) as { checkpoints?: string[] }).checkpoints ?? [])
        : [];
    const input = await fetchFromApi(get, jwks.broker, jwks.keys, known);
    report = await auditLogOnAllCores(input, progressBar(io, 'replaying'));
    if (values.state && report.ok)
      writeFileSync(values.state, JSON.stringify({ checkpoints: [...known, input.latestNote].slice(-100) }, null, 2));
  }
  const seconds = (Date.now() - started) / 1000;
  io.out(values.json ? JSON.stringify(report, null, 2) + '\n' : summary(report, seconds));
  return report.ok ? 0 : 1;
}

export async function auditExport(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nats: { type: 'string' },
      'data-dir': { type: 'string' },
      origin: { type: 'string' },
      out: { type: 'string' },
      'encrypt-to': { type: 'string' },
    },
  });
  if (!values.out) throw new UsageError('needs --out FILE');
  // --encrypt-to KEYFILE: the auditor's OpenPGP public key (armored); read before anything connects.
  let auditor: PublicKey | undefined;
  let auditorJwk: JWK | undefined;
  const jwkText = values['encrypt-to'] ? readFileSync(values['encrypt-to'], 'utf8').trim() : '';
  if (values['encrypt-to'] && jwkText.startsWith('{')) {
    // A JWK: the notices go in a JWE to it, the rest of the archive stays in clear.
    let jwk: unknown;
    try {
      jwk = JSON.parse(jwkText);
    } catch {
      jwk = undefined;
    }
    const refusal = auditorKeyRefusal(jwk, false);
    if (refusal) throw new UsageError(`--encrypt-to ${values['encrypt-to']}: ${refusal}`);
    auditorJwk = jwk as JWK;
  } else if (values['encrypt-to']) {
    try {
      const key = await readKey({ armoredKey: readFileSync(values['encrypt-to'], 'utf8') });
      if (key.isPrivate()) throw new Error('it holds a private key; give the public key');
      await key.getEncryptionKey();
      auditor = key;
    } catch (e) {
      throw new Error(
        `--encrypt-to ${values['encrypt-to']}: not a usable OpenPGP public key (${(e as Error).message})`,
      );
    }
  }
  const natsUrl = cliNatsUrl(values.nats, process.env, values['data-dir']);
  if (!natsUrl)
    throw new UsageError('needs --nats URL (or NATS_URL, or a data dir whose local nats-server wrote nats/url)');
  const dataDir = values['data-dir'] ?? process.env.LIAISON_DATA_DIR ?? './data';
  const origin = values.origin ?? process.env.LIAISON_BROKER_ID ?? 'liaison-hub';
  // Public parts only: the archive carries the broker's signing key history, never a private key.
  const keyFile = JSON.parse(readFileSync(join(dataDir, 'broker', 'keys.json'), 'utf8')) as {
    signing: JWK[];
    storage?: JWK[];
  };
  const brokerKeys = keyFile.signing
    .map((k) => publicPart(k))
    .map((k) => ({ kty: String(k.kty), crv: String(k.crv), x: String(k.x), kid: String(k.kid) }));
  const bus = await connectNats({
    servers: natsUrl,
    name: 'liaison-audit-export',
    publishTimeoutMs: 5000,
    logger: createLogger('silent'),
    auth: cliNatsAuth(process.env, values['data-dir']),
  });
  try {
    // The signed notices only in an archive encrypted to the auditor: a file in clear must not hold notice content.
    const encrypted = auditor !== undefined || auditorJwk !== undefined;
    const archive = await exportArchive(bus, origin, brokerKeys, encrypted ? storageKeysOf(keyFile) : null);
    if (auditorJwk && archive.notices) {
      // The rest of this archive is in clear, and a complaint's detail may quote the notice: both sealed.
      archive.notices_jwe = await sealContentsTo(auditorJwk, {
        notices: archive.notices,
        ...(archive.complaints ? { complaints: archive.complaints } : {}),
      });
      delete archive.notices;
      delete archive.complaints;
    }
    if (auditor) {
      // An OpenPGP message to the auditor, signed by the broker's OpenPGP key when this data dir has one.
      const pgpFile = join(dataDir, ...OPENPGP_KEY_FILE);
      const signer = existsSync(pgpFile)
        ? (await brokerOpenPgpKeysFromFile(JSON.parse(readFileSync(pgpFile, 'utf8')) as BrokerOpenPgpKeyFile))
            .decryptionKeys[0]
        : undefined;
      const message = await createMessage({
        binary: new TextEncoder().encode(JSON.stringify(archive)),
        filename: 'liaison-audit-archive.json',
        format: 'binary',
      });
      writeFileSync(
        values.out,
        (await encrypt({
          message,
          encryptionKeys: auditor,
          ...(signer ? { signingKeys: signer } : {}),
          format: 'armored',
        })) as string,
        { mode: 0o600 },
      );
    } else {
      // No notice content, but readable by the owner only all the same (an existing file is narrowed too).
      writeFileSync(values.out, JSON.stringify(archive), { mode: 0o600 });
    }
    chmodSync(values.out, 0o600);
    io.err(
      `exported ${archive.entries.length} entries, ${archive.checkpoints.length} checkpoints, ${archive.notices ? `${archive.notices.length} notices still held` : archive.notices_jwe ? 'the notices encrypted to the auditor' : 'no notices (give --encrypt-to to include them)'} to ${values.out}\n`,
    );
  } finally {
    await bus.close();
  }
  return 0;
}

export const auditCommands = { 'audit verify': auditVerify, 'audit export': auditExport };
