import { readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import { brokerEncryptionKey, sealNotice } from '../client/seal.js';
import { credentialsPath, makeAgency, readCredentials } from '../demo/demo-network.js';
import { verifyReceipt } from '../ingest/receipt.js';
import type { KeyKind } from '../keys/jwk.js';

const HELP = `liaison — the Liaison command line

Usage:
  liaison keys generate --agency ID --country CC [--sig Ed25519|ES256] [--enc X25519|P-256] [--out FILE]
      Make an agency's signing and encryption key pairs. Writes the private
      credentials (JWK) to FILE (default: ID.json, mode 0600) and prints the
      public registry record to add to the member registry.

  liaison notice send FILE --as AGENCY [--url URL] [--data-dir DIR] [--credentials FILE]
                          [--stamp] [--alg ECDH-ES+A256KW|ECDH-ES] [--curve X25519|P-256] [--json]
      Sign FILE (a notice JSON) with AGENCY's key, encrypt it to the broker's
      key from GET /v1/keys, post it, and print the receipt. --stamp gives the
      notice a fresh id and created_at (for the samples in docs/examples).

  liaison receipt verify RECEIPT|FILE [--url URL | --keys JWKS-FILE] [--json]
      Verify a broker receipt against the broker's published keys.

Common: --url defaults to $LIAISON_URL or http://127.0.0.1:8080; --data-dir to $LIAISON_DATA_DIR or ./data.
`;

class CliError extends Error {}

const baseUrl = (v?: string) => (v ?? process.env.LIAISON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

async function fetchJwks(url: string): Promise<{ keys: JWK[]; broker: string }> {
  const res = await fetch(`${url}/v1/keys`).catch((e: Error) => {
    throw new CliError(`cannot reach the broker at ${url}: ${e.message}`);
  });
  if (!res.ok) throw new CliError(`GET ${url}/v1/keys answered ${res.status}`);
  return (await res.json()) as { keys: JWK[]; broker: string };
}

async function keysGenerate(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { agency: { type: 'string' }, country: { type: 'string' }, sig: { type: 'string', default: 'Ed25519' }, enc: { type: 'string', default: 'X25519' }, out: { type: 'string' } } });
  if (!values.agency || !/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(values.agency)) throw new CliError('--agency must be a lower-case slug, e.g. vn-customs');
  if (!values.country || !/^[A-Z]{2}$/.test(values.country)) throw new CliError('--country must be an ISO 3166-1 alpha-2 code, e.g. VN');
  const sig = ({ Ed25519: 'Ed25519', ES256: 'ES256' } as Record<string, KeyKind>)[values.sig ?? ''];
  const enc = ({ X25519: 'X25519', 'P-256': 'P-256-ECDH' } as Record<string, KeyKind>)[values.enc ?? ''];
  if (!sig) throw new CliError('--sig must be Ed25519 or ES256');
  if (!enc) throw new CliError('--enc must be X25519 or P-256');
  const { credentials, record } = await makeAgency({ id: values.agency, country: values.country, name: values.agency, roles: ['publish', 'subscribe'], sig, enc });
  const out = values.out ?? `${values.agency}.json`;
  writeFileSync(out, JSON.stringify(credentials, null, 2), { mode: 0o600 });
  process.stderr.write(`private keys written to ${out} (keep it secret); registry record:\n`);
  process.stdout.write(JSON.stringify(record, null, 2) + '\n');
}

async function noticeSend(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { as: { type: 'string' }, url: { type: 'string' }, 'data-dir': { type: 'string' }, credentials: { type: 'string' }, stamp: { type: 'boolean' }, alg: { type: 'string', default: 'ECDH-ES+A256KW' }, curve: { type: 'string', default: 'X25519' }, json: { type: 'boolean' } },
  });
  const file = positionals[0];
  if (!file) throw new CliError('notice send needs a FILE');
  if (!values.as && !values.credentials) throw new CliError('notice send needs --as AGENCY (or --credentials FILE)');
  const dataDir = values['data-dir'] ?? process.env.LIAISON_DATA_DIR ?? './data';
  const credFile = values.credentials ?? credentialsPath(dataDir, values.as as string);
  let creds;
  try {
    creds = readCredentials(credFile);
  } catch {
    throw new CliError(`cannot read the credentials of ${values.as ?? credFile} at ${credFile} (start the demo with npm start, or pass --credentials)`);
  }
  if (values.alg !== 'ECDH-ES+A256KW' && values.alg !== 'ECDH-ES') throw new CliError('--alg must be ECDH-ES+A256KW or ECDH-ES');
  if (values.curve !== 'X25519' && values.curve !== 'P-256') throw new CliError('--curve must be X25519 or P-256');
  let bytes: Uint8Array = readFileSync(file);
  if (values.stamp) {
    const notice = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    notice.id = randomUUID();
    notice.created_at = new Date().toISOString();
    if (typeof notice.origin === 'object' && notice.origin) notice.origin = { ...(notice.origin as object), agency: creds.agency, country: creds.country };
    bytes = new TextEncoder().encode(JSON.stringify(notice, null, 2));
  }
  const url = baseUrl(values.url);
  const jwks = await fetchJwks(url);
  const { jwe } = await sealNotice(bytes, { signingKey: creds.signing, brokerKey: brokerEncryptionKey(jwks, values.curve), keyManagement: values.alg });
  const res = await fetch(`${url}/v1/notices`, { method: 'POST', headers: { 'content-type': 'application/jose' }, body: jwe });
  const body = (await res.json()) as Record<string, unknown>;
  if (values.json) {
    process.stdout.write(JSON.stringify({ status: res.status, ...body }, null, 2) + '\n');
  } else if (res.status === 202) {
    process.stdout.write(
      `accepted: notice ${String(body.notice_id)} at log index ${String(body.log_index)}, received ${String(body.received_at)}\n` +
        `recipients: ${(body.recipients as string[]).join(', ')}\nreceipt: ${String(body.receipt)}\n`,
    );
  } else {
    process.stdout.write(`refused (${res.status} ${String(body.code)}): ${String(body.title)}${body.detail ? ` ${String(body.detail)}` : ''}\n`);
    for (const e of (body.errors as { path: string; message: string }[] | undefined) ?? []) process.stdout.write(`  ${e.path}: ${e.message}\n`);
  }
  if (res.status !== 202) process.exitCode = 1;
}

async function receiptVerify(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { url: { type: 'string' }, keys: { type: 'string' }, json: { type: 'boolean' } } });
  const arg = positionals[0];
  if (!arg) throw new CliError('receipt verify needs a RECEIPT (compact JWS) or a FILE holding one (or the JSON answer of notice send)');
  let text = arg.split('.').length === 3 ? arg : readFileSync(arg, 'utf8').trim();
  if (text.startsWith('{')) text = String((JSON.parse(text) as { receipt?: unknown }).receipt ?? '');
  const jwks = values.keys ? (JSON.parse(readFileSync(values.keys, 'utf8')) as { keys: JWK[] }) : await fetchJwks(baseUrl(values.url));
  let claims;
  try {
    claims = await verifyReceipt(text, jwks);
  } catch (e) {
    throw new CliError(`receipt does NOT verify: ${(e as Error).message}`);
  }
  if (values.json) process.stdout.write(JSON.stringify({ valid: true, claims }, null, 2) + '\n');
  else process.stdout.write(`receipt verifies: notice ${claims.notice_id}, log index ${claims.log_index}, sha256 ${claims.sha256}, received ${claims.received_at} by ${claims.iss}\n`);
}

const commands: Record<string, (args: string[]) => Promise<void>> = {
  'keys generate': keysGenerate,
  'notice send': noticeSend,
  'receipt verify': receiptVerify,
};

export async function run(argv: string[]): Promise<number> {
  const [a, b, ...rest] = argv;
  if (!a || a === '--help' || a === '-h' || a === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const cmd = commands[`${a} ${b ?? ''}`];
  if (!cmd) {
    process.stderr.write(`liaison: unknown command "${[a, b].filter(Boolean).join(' ')}"\n\n${HELP}`);
    return 2;
  }
  if (rest.includes('--help')) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    await cmd(rest);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    process.stderr.write(`liaison ${a} ${b}: ${e instanceof CliError ? e.message : (e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await run(process.argv.slice(2));
