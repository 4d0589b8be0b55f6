/** `liaison certs ...`: the network PKI from the command line (certs/pki.ts). */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pki } from '../../certs/pki.js';
import { UsageError } from '../core/usage-error.js';
import type { Io } from './liaison.js';

export const CERTS_HELP = `  liaison certs init [--dir DIR] [--agency ID]... [--server-name NAME]... [--days N]
                     [--ca-cert FILE --ca-key FILE [--ca-key-pass-env VAR]]
      Make (or complete) the network PKI in DIR (default: <data dir>/pki): a dev CA,
      or the operator's CA given by --ca-cert/--ca-key; the gateway's certificate
      (SAN localhost, 127.0.0.1, ::1 and each --server-name); one client
      certificate per --agency (SAN URI urn:liaison:agency:ID); a CRL. Keys 0600.
  liaison certs issue --agency ID [--dir DIR] [--days N]
  liaison certs issue --server [--server-name NAME]... [--dir DIR]
      (Re)issue an agency's client certificate or the gateway's certificate.
  liaison certs revoke --agency ID [--reason keyCompromise|superseded|...] [--dir DIR]
      Revoke the agency's current certificate and write a new CRL (gateways re-read it).
  liaison certs crl [--dir DIR]
      Write a fresh CRL (before the current one's nextUpdate, 30 days).
`;

const dirOf = (v: string | undefined) => v ?? join(process.env.LIAISON_DATA_DIR ?? './data', 'pki');
const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));

async function certsInit(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      agency: { type: 'string', multiple: true },
      'server-name': { type: 'string', multiple: true },
      days: { type: 'string' },
      'ca-cert': { type: 'string' },
      'ca-key': { type: 'string' },
      'ca-key-pass-env': { type: 'string' },
    },
  });
  const { paths, created } = Pki.init(dirOf(values.dir), {
    agencies: values.agency ?? [],
    serverNames: values['server-name'] ?? [],
    ...(values.days !== undefined ? { days: int(values.days) as number } : {}),
    ...(values['ca-cert'] !== undefined ? { caCert: values['ca-cert'] } : {}),
    ...(values['ca-key'] !== undefined ? { caKey: values['ca-key'] } : {}),
    ...(values['ca-key-pass-env'] !== undefined ? { caKeyPassEnv: values['ca-key-pass-env'] } : {}),
  });
  io.out(
    created.length ? `PKI in ${paths.dir}: wrote ${created.join(', ')}\n` : `PKI in ${paths.dir}: nothing to do\n`,
  );
  io.out(`trust: ${paths.caCert}\nCRL:   ${paths.crl}\n`);
  return 0;
}

async function certsIssue(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      agency: { type: 'string' },
      server: { type: 'boolean' },
      'server-name': { type: 'string', multiple: true },
      days: { type: 'string' },
    },
  });
  const pki = Pki.open(dirOf(values.dir));
  if (values.server) {
    const c = pki.issueServer(values['server-name'] ?? [], int(values.days));
    io.out(`gateway certificate ${pki.paths.serverCert} (serial ${c.serialNumber}); restart the gateway to use it\n`);
    return 0;
  }
  if (!values.agency) throw new UsageError('needs --agency ID or --server');
  const c = pki.issueAgency(values.agency, int(values.days));
  io.out(
    `client certificate of ${values.agency}: ${pki.paths.agencyCert(values.agency)} (serial ${c.serialNumber}), key ${pki.paths.agencyKey(values.agency)}\n`,
  );
  return 0;
}

const REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'] as const;

async function certsRevoke(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      agency: { type: 'string' },
      reason: { type: 'string', default: 'unspecified' },
    },
  });
  if (!values.agency) throw new UsageError('needs --agency ID');
  const reason = REASONS.find((r) => r === values.reason);
  if (!reason) throw new UsageError(`--reason must be one of ${REASONS.join(', ')}`);
  const pki = Pki.open(dirOf(values.dir));
  const serial = pki.revoke(pki.paths.agencyCert(values.agency), reason);
  io.out(`revoked serial ${serial} of ${values.agency}; new CRL ${pki.paths.crl}\n`);
  io.out(
    `to refuse it on every gateway at once, also add { "serial": "${serial}", "status": "revoked", "revoked_at": "${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')}" } to the agency's certificates in the registry\n`,
  );
  return 0;
}

async function certsCrl(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { dir: { type: 'string' } } });
  const pki = Pki.open(dirOf(values.dir));
  pki.writeCrl();
  io.out(`new CRL ${pki.paths.crl}\n`);
  return 0;
}

export const certsCommands: Record<string, (args: string[], io: Io) => Promise<number>> = {
  'certs init': certsInit,
  'certs issue': certsIssue,
  'certs revoke': certsRevoke,
  'certs crl': certsCrl,
};
