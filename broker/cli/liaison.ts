import { existsSync, readFileSync } from 'node:fs';
import { mkdir0700, write0600 } from '../core/data-dir.js';
import { CodedError } from '../core/errors.js';
import { spawnSync } from 'node:child_process';

import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../core/paths.js';
import { isUsageError, UsageError } from '../core/usage-error.js';
import type { JWK } from 'jose';
import {
  CLIENT_TLS_ENV,
  clientFetch,
  clientTlsFromArgs,
  clientTlsOptions,
  fetchBrokerKeys,
} from '../agency-client/http.js';
import { assertion } from './assertion.js';
import {
  baseUrl,
  gatewayOf,
  noticeBytes,
  noticeSeal,
  noticeWithdraw,
  postEnvelope,
  sealForOperation,
  sealingChoice,
  sealingOptions,
} from './notice.js';
import { makeAgency, credentialsFor } from '../demo/demo-network.js';
import { verifyReceipt } from '../ingest/notice-receipt.js';
import type { KeyKind } from '../keys/jwk.js';
import { auditCommands } from './audit.js';
import { inboxCommands } from './inbox.js';
import { CERTS_HELP, certsCommands } from './certs.js';
import { NATS_HELP, natsCommands } from './nats.js';
import { ADMIN_HELP, adminCommands } from './admin.js';
import { webhookCommands } from './webhook.js';

const TLS_HELP = `Over HTTPS: --cert/--key present the agency's client certificate
      (mutual TLS; e.g. data/pki/agencies/AGENCY.{crt,key}), --ca trusts the CA of
      the gateway's certificate (e.g. data/pki/ca.crt).`;

const HELP = `liaison — the Liaison command line

Usage:
  liaison keys generate --agency ID --country CC [--sig Ed25519|ES256] [--enc X25519|P-256] [--out FILE] [--force]
      Make an agency's signing and encryption key pairs. Writes the private
      credentials (JWK) to FILE (default: DATA_DIR/keys/ID.json, mode 0600) and
      prints the public registry record to add to the member registry. Refuses
      to replace an existing file, or to write where git would track it, unless --force.

  liaison notice send FILE --as AGENCY [--url URL] [--data-dir DIR] [--credentials FILE]
                          [--stamp] [--alg ECDH-ES+A256KW|ECDH-ES] [--curve X25519|P-256] [--json]
                          [--cert FILE --key FILE] [--ca FILE]
      Sign FILE (a notice JSON) with AGENCY's key, encrypt it to the broker's
      key from GET /v1/keys, post it, and print the receipt. --stamp makes a
      sample sendable now (docs/examples/notices): a fresh id, created_at now,
      expires_at moved by as much (the validity period is kept), origin AGENCY.
      A 503 is sent again after its Retry-After (5 attempts, 60 s of waiting at most).
      In an end-to-end operation it seals for the recipients instead (docs/end-to-end.md):
      in OpenPGP when AGENCY's credentials hold an OpenPGP key and every recipient has
      an OpenPGP certificate, else in JOSE.
      ${TLS_HELP}

  liaison notice seal FILE --as AGENCY [--url URL] [--data-dir DIR] [--credentials FILE]
                          [--stamp] [--alg ECDH-ES+A256KW|ECDH-ES] [--curve X25519|P-256]
                          [--cert FILE --key FILE] [--ca FILE]
      Print the envelope notice send would post (a compact JWE: FILE signed
      with AGENCY's key, encrypted to the broker's key), and post nothing:
      curl --data-binary @notice.jwe sends it. --stamp as for notice send.

  liaison notice withdraw NOTICE_ID --as AGENCY --reason TEXT [--correction TEXT]
                          [--summary TEXT] [--language TAG] [--priority P] [--tlp TLP] [--wait SECONDS]
                          [--url URL] [--data-dir DIR] [--credentials FILE] [--json] [--cert FILE --key FILE] [--ca FILE]
      Withdraw one of AGENCY's notices (or, with --correction, correct it): build
      a withdrawal notice (schemas/notice/withdrawal) in the notice's operation,
      at its TLP (--tlp to raise it), addressed to its recipients, then sign,
      seal and post it as notice send does and print the receipt. The notice is
      read from the signed log (GET /v1/notices/ID/proof), which holds it once a
      checkpoint covers it: waits up to --wait seconds (default 30) for that.
      --language (default en) and --priority (default high) are the header's.

  liaison assertion --as AGENCY [--url URL | --broker ID] [--lifetime SECONDS]
                    [--data-dir DIR] [--credentials FILE] [--cert FILE --key FILE] [--ca FILE]
      Print a client assertion for one API request (Authorization: Bearer ...):
      a JWT signed with AGENCY's key, aud the broker id (from GET /v1/keys, or
      --broker), a fresh jti, valid --lifetime seconds (default 120, at most
      300). The gateway accepts each assertion once: make one per request.

  liaison receipt verify RECEIPT|FILE [--url URL [--cert FILE --key FILE] [--ca FILE] | --keys JWKS-FILE] [--json]
      Verify a broker receipt against the broker's published keys (fetched
      from --url, with the client certificate if the gateway requires one).

  liaison audit verify --archive FILE [--decrypt-with JWK_FILE] [--json]
  liaison audit verify --url URL --as AGENCY [--data-dir DIR | --credentials FILE] [--state FILE] [--json]
                       [--cert FILE --key FILE] [--ca FILE]
      Replay the signed log: recompute the Merkle tree from every entry, check
      every checkpoint's signature (broker key history), their consistency and
      forks, and every notice still held against its commitment. Exits 1 and
      names the first bad entry when anything does not verify. --state keeps
      the checkpoints seen, so the next run proves the hub stayed consistent.
      ${TLS_HELP}

  liaison audit export [--nats URL] [--data-dir DIR] [--origin ID] --out FILE [--encrypt-to KEYFILE]
      Write a self-contained audit archive (entries, checkpoints with
      consistency proofs, leaf hashes, broker public keys). The signed notices
      only with --encrypt-to: an auditor's public X25519/P-256 JWK (the notices
      in a JWE to it; verify opens them with --decrypt-with the private JWK) or
      OpenPGP key (the whole archive encrypted). Reads NATS directly, as the broker user: NATS_USER + NATS_PASSWORD_FILE
      (or NATS_PASSWORD), NATS_TOKEN or NATS_CREDS, as for the gateway.

  liaison inbox pull --as AGENCY [--credentials FILE] [--after CURSOR] [--limit N]
                     [--operation ID] [--origin CC] [--type TYPE] [--json] [--cert FILE --key FILE] [--ca FILE]
  liaison inbox follow --as AGENCY [...same filters] [--count N] [--json] [--cert FILE --key FILE] [--ca FILE]
      Read the deliveries addressed to AGENCY (pull a page after a cursor, or
      follow the live stream), decrypt each with the agency's own key, verify
      the origin's signature against the origin's registered key, and print a
      summary (or one JSON object per delivery).
      ${TLS_HELP}

  liaison inbox complain NOTICE_ID --as AGENCY [--credentials FILE] --reason CODE [--detail TEXT] [--json]
                         [--cert FILE --key FILE] [--ca FILE]
      File a complaint about a notice delivered to AGENCY that fails its checks,
      signed with the agency's key and logged by the broker; prints its log index.
      CODE: body-signature-invalid, body-schema-invalid, header-mismatch,
      undecryptable or other. TEXT: at most 1000 characters, any script, kept
      exactly. One complaint per notice and agency (the same one again is fine).
      ${TLS_HELP}

  liaison webhook deadletters [--nats URL] [--agency ID] [--json]
  liaison webhook redeliver [--nats URL] (--seq N [--seq M ...] | --agency ID | --all)
      Operator: list the webhook deliveries parked in the dead-letter stream
      after every try failed, and send them again (through the same tries).
      NATS credentials from the environment, as for audit export.

${CERTS_HELP}
${NATS_HELP}
${ADMIN_HELP}
Common: --url defaults to $LIAISON_URL or http://127.0.0.1:8080; --data-dir to $LIAISON_DATA_DIR or ./data;
  --cert, --key and --ca to $${CLIENT_TLS_ENV.cert}, $${CLIENT_TLS_ENV.key} and $${CLIENT_TLS_ENV.ca}.
  liaison --version prints the version; liaison GROUP --help the usage of a group's commands.
Exit status: 0 done; 1 refused or failed (a problem from the gateway, a signature that does
  not verify, a file that cannot be read); 2 a command line that cannot run as given.
`;

class CliError extends CodedError<'command-refused'> {
  constructor(message: string) {
    super('command-refused', message);
  }
}

/** Whether git would track `file`: it is inside a work tree and not ignored. Inside a work tree without a usable git, yes (the safe side). */
function trackedByGit(file: string): boolean {
  const dir = dirname(file);
  let d = dir;
  while (!existsSync(join(d, '.git'))) {
    const up = dirname(d);
    if (up === d) return false;
    d = up;
  }
  const r = spawnSync('git', ['check-ignore', '-q', '--no-index', file], { cwd: d, stdio: 'ignore', timeout: 5000 });
  // 0: ignored; 1: not ignored; anything else (no git, an error): it is in a work tree, so treat it as tracked.
  return r.status !== 0;
}

async function keysGenerate(args: string[], io: Io): Promise<number | void> {
  const { values } = parseArgs({
    args,
    options: {
      agency: { type: 'string' },
      country: { type: 'string' },
      sig: { type: 'string', default: 'Ed25519' },
      enc: { type: 'string', default: 'X25519' },
      out: { type: 'string' },
      'data-dir': { type: 'string' },
      force: { type: 'boolean' },
    },
  });
  if (!values.agency || !/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(values.agency))
    throw new UsageError('--agency must be a lower-case slug, e.g. vn-customs');
  if (!values.country || !/^[A-Z]{2}$/.test(values.country))
    throw new UsageError('--country must be an ISO 3166-1 alpha-2 code, e.g. VN');
  const sig = ({ Ed25519: 'Ed25519', ES256: 'ES256' } as Record<string, KeyKind>)[values.sig ?? ''];
  const enc = ({ X25519: 'X25519', 'P-256': 'P-256-ECDH' } as Record<string, KeyKind>)[values.enc ?? ''];
  if (!sig) throw new UsageError('--sig must be Ed25519 or ES256');
  if (!enc) throw new UsageError('--enc must be X25519 or P-256');
  const { credentials, record } = await makeAgency({
    id: values.agency,
    country: values.country,
    name: values.agency,
    roles: ['publish', 'subscribe'],
    sig,
    enc,
    thumbprintKids: true,
  });
  // Private keys go to the data dir (git-ignored) unless told; a path git would track, or an existing key file, needs --force.
  const out = resolve(
    values.out ?? join(values['data-dir'] ?? process.env.LIAISON_DATA_DIR ?? './data', 'keys', `${values.agency}.json`),
  );
  if (!values.force) {
    if (existsSync(out)) throw new CliError(`${out} exists; it may hold keys in use (--force to replace it)`);
    if (trackedByGit(out))
      throw new CliError(
        `${out} is inside a git work tree and not ignored: a private key could be committed (write it elsewhere, or --force)`,
      );
  }
  mkdir0700(dirname(out));
  write0600(out, JSON.stringify(credentials, null, 2));
  io.err(`private keys written to ${out} (keep it secret); registry record:\n`);
  io.out(JSON.stringify(record, null, 2) + '\n');
}

async function noticeSend(args: string[], io: Io): Promise<number | void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...sealingOptions, stamp: { type: 'boolean' }, json: { type: 'boolean' } },
  });
  const file = positionals[0];
  if (!file) throw new UsageError('needs a FILE (a notice JSON)');
  const creds = credentialsFor(values);
  const choice = sealingChoice(values);
  const bytes = noticeBytes(file, values.stamp === true, creds);
  const gateway = await gatewayOf(values);
  const { envelope, contentType } = await sealForOperation(bytes, creds, gateway, choice, io);
  return postEnvelope(gateway.url, gateway.fetch, envelope, io, values.json === true, contentType);
}

async function receiptVerify(args: string[], io: Io): Promise<number | void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { url: { type: 'string' }, keys: { type: 'string' }, json: { type: 'boolean' }, ...clientTlsOptions },
  });
  const arg = positionals[0];
  if (!arg)
    throw new UsageError('needs a RECEIPT (compact JWS) or a FILE holding one (or the JSON answer of notice send)');
  let text = arg.split('.').length === 3 ? arg : readFileSync(arg, 'utf8').trim();
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever the file holds, as text
  if (text.startsWith('{')) text = String((JSON.parse(text) as { receipt?: unknown }).receipt ?? '');
  const jwks = values.keys
    ? (JSON.parse(readFileSync(values.keys, 'utf8')) as { keys: JWK[] })
    : await fetchBrokerKeys(baseUrl(values.url), clientFetch(baseUrl(values.url), clientTlsFromArgs(values)));
  let claims;
  try {
    claims = await verifyReceipt(text, jwks);
  } catch (e) {
    throw new CliError(`receipt does NOT verify: ${(e as Error).message}`);
  }
  if (values.json) io.out(JSON.stringify({ valid: true, claims }, null, 2) + '\n');
  else
    io.out(
      `receipt verifies: notice ${claims.notice_id}, log index ${claims.log_index}, sha256 ${claims.sha256}, received ${claims.received_at} by ${claims.iss}\n`,
    );
}

/** Where a command writes: the process's streams by default, a buffer in tests. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}
const processIo: Io = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

/** A command: takes its arguments, writes through io, returns its exit code (void = 0). */
export type Command = (args: string[], io: Io) => Promise<number | void>;

export const commands: Record<string, Command> = {
  'keys generate': keysGenerate,
  'notice send': noticeSend,
  'notice seal': noticeSeal,
  'notice withdraw': noticeWithdraw,
  'receipt verify': receiptVerify,
  ...auditCommands,
  ...inboxCommands,
  ...webhookCommands,
  ...certsCommands,
  ...natsCommands,
  ...adminCommands,
  assertion,
};

/** The paragraphs of HELP that describe one command (its usage lines and text), or all of HELP. */
export function commandHelp(command: string): string {
  const paragraphs = HELP.split(/\n\s*\n/);
  const mine = paragraphs
    .filter((p) => p.split('\n').some((line) => line.trim().startsWith(`liaison ${command}`)))
    .map((p) => p.replace(/^Usage:\n/, ''));
  return mine.length > 0 ? `Usage:\n${mine.join('\n\n')}\n` : HELP;
}

export async function run(argv: string[], io: Io = processIo): Promise<number> {
  const [a, b, ...rest] = argv;
  const asksHelp = (x: string | undefined) => x === '--help' || x === '-h';
  if (a === '--version' || a === '-V') {
    io.out(`liaison ${packageVersion()}\n`);
    return 0;
  }
  if (asksHelp(a) || a === 'help') {
    io.out(HELP);
    return 0;
  }
  if (!a) {
    io.err(`liaison: needs a command\n\n${HELP}`);
    return 2;
  }
  // A command of one word (`liaison assertion ...`) takes every argument after it.
  const known = (k: string) => (Object.hasOwn(commands, k) ? commands[k] : undefined);
  const single = known(a);
  const cmd = single ?? known(`${a} ${b ?? ''}`);
  const name = single ? a : `${a} ${b}`;
  const args = single ? argv.slice(1) : rest;
  const group = Object.keys(commands).filter((k) => k.startsWith(`${a} `));
  if (!cmd && group.length > 0 && asksHelp(b)) {
    io.out(commandHelp(a));
    return 0;
  }
  if (!cmd && group.length > 0) {
    // A known group with no or an unknown subcommand: name its subcommands and show their usage only.
    const subcommands = group.map((k) => k.slice(a.length + 1)).join(', ');
    io.err(
      `liaison ${a}: ${b === undefined ? 'needs a subcommand' : `unknown subcommand "${b}"`}: ${subcommands}\n\n${commandHelp(a)}`,
    );
    return 2;
  }
  if (!cmd) {
    io.err(`liaison: unknown command "${[a, b].filter(Boolean).join(' ')}"\n\n${HELP}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    io.out(commandHelp(name));
    return 0;
  }
  try {
    return (await cmd(args, io)) ?? 0;
  } catch (e) {
    if (isUsageError(e)) {
      io.err(`liaison ${name}: ${(e as Error).message} (liaison ${name} --help)\n`);
      return 2;
    }
    io.err(`liaison ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

/** This package's version, from package.json beside dist/ and the sources alike. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
