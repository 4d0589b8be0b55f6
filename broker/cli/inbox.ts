/**
 * `liaison inbox pull` and `liaison inbox follow`: an agency reads, decrypts and verifies its deliveries;
 * `liaison inbox complain`: it files a signed complaint about one that fails its checks.
 */
import { parseArgs } from 'node:util';
import type { AgencyCredentials } from '../agency-client/credentials.js';
import { credentialsFor } from '../demo/demo-network.js';
import type { InboxDelivery } from '../core/inbox-delivery.js';
import { clientFetch, clientTlsFromArgs, clientTlsOptions, HttpClientError } from '../agency-client/http.js';
import { InboxClient, type InboxQuery } from '../agency-client/inbox-client.js';
import { COMPLAINT_REASONS, isComplaintReason, MAX_COMPLAINT_DETAIL } from '../core/complaint.js';
import { isUuid } from '../core/ids.js';
import { UsageError } from '../core/usage-error.js';
import type { Io } from './liaison.js';

const options = {
  as: { type: 'string' },
  credentials: { type: 'string' },
  url: { type: 'string' },
  'data-dir': { type: 'string' },
  after: { type: 'string' },
  limit: { type: 'string' },
  operation: { type: 'string' },
  origin: { type: 'string' },
  type: { type: 'string' },
  json: { type: 'boolean' },
  count: { type: 'string' },
  ...clientTlsOptions,
} as const;

type Values = { [K in keyof typeof options]?: (typeof options)[K]['type'] extends 'boolean' ? boolean : string };

function setup(values: Values): { client: InboxClient; creds: AgencyCredentials; q: InboxQuery } {
  const creds = credentialsFor(values);
  const int = (v: string | undefined, what: string) => {
    if (v === undefined) return undefined;
    if (!/^\d{1,15}$/.test(v)) throw new UsageError(`--${what} must be a non-negative integer`);
    return Number(v);
  };
  const url = (values.url ?? process.env.LIAISON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const q: InboxQuery = {};
  const after = int(values.after, 'after');
  const limit = int(values.limit, 'limit');
  if (after !== undefined) q.after = after;
  if (limit !== undefined) q.limit = limit;
  if (values.operation) q.operation = values.operation;
  if (values.origin) q.origin = values.origin;
  if (values.type) q.type = values.type;
  const fetch = clientFetch(url, clientTlsFromArgs(values));
  return {
    client: new InboxClient({
      url,
      agency: creds.agency,
      signingKey: creds.signing,
      encryptionKey: creds.encryption,
      openPgpKey: creds.openpgp?.private_armored,
      fetch,
    }),
    creds,
    q,
  };
}

/** Open one delivery and print it; a delivery that does not verify is reported, never printed as if it did. */
async function show(client: InboxClient, d: InboxDelivery, io: Io, json: boolean): Promise<boolean> {
  try {
    if (d.erased) {
      // An erased notice: its content is gone; the broker's signed record says by which logged event.
      const r = await client.openErasure(d);
      io.out(
        json
          ? JSON.stringify({ cursor: d.cursor, notice_id: d.notice_id, verified: true, erased: r }) + '\n'
          : `#${d.cursor} ${d.notice_id} ${d.operation} from ${d.origin.agency} (${d.origin.country}) ERASED by event ${r.event_id} (log ${r.log_index}) at ${r.erased_at}; broker signature verified\n`,
      );
      return true;
    }
    const { notice, signerKid, brokerFingerprint } = await client.open(d);
    const broker = brokerFingerprint ? { broker_fingerprint: brokerFingerprint } : {};
    if (json)
      io.out(
        JSON.stringify({
          cursor: d.cursor,
          notice_id: d.notice_id,
          log_index: d.log_index,
          verified: true,
          signer_kid: signerKid,
          ...broker,
          notice,
        }) + '\n',
      );
    else {
      const n = notice as { type?: string; tlp?: string; priority?: string; summary?: string; created_at?: string };
      const via = brokerFingerprint
        ? `OpenPGP delivery signed by the broker (${brokerFingerprint}); `
        : d.e2e !== undefined
          ? "end to end: opened with this agency's key, matches its routing header and schema; "
          : '';
      io.out(
        `#${d.cursor} ${d.notice_id} ${d.operation} from ${d.origin.agency} (${d.origin.country}) TLP:${d.tlp} ${d.type} log ${d.log_index}\n  ${via}signature verified (${signerKid}); created ${n.created_at ?? '?'}\n  ${n.summary ?? ''}\n`,
      );
    }
    return true;
  } catch (e) {
    // `error` is a verdict on the delivery; a gateway the client could not reach gives none.
    const error = e instanceof HttpClientError ? 'error' : ((e as { code?: string }).code ?? 'error');
    if (json)
      io.out(
        JSON.stringify({
          cursor: d.cursor,
          notice_id: d.notice_id,
          verified: false,
          error,
          message: (e as Error).message,
        }) + '\n',
      );
    else io.out(`#${d.cursor} ${d.notice_id}: DOES NOT VERIFY (${(e as Error).message})\n`);
    return false;
  }
}

export async function inboxPull(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options });
  const { client, q } = setup(values);
  const page = await client.pull(q);
  let ok = true;
  for (const d of page.deliveries) ok = (await show(client, d, io, !!values.json)) && ok;
  if (values.json) io.out(JSON.stringify({ next: page.next, count: page.deliveries.length }) + '\n');
  else
    io.out(
      `${page.deliveries.length} ${page.deliveries.length === 1 ? 'delivery' : 'deliveries'}; continue with --after ${page.next}\n`,
    );
  return ok ? 0 : 1;
}

export async function inboxFollow(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options });
  const { client, q } = setup(values);
  const max = values.count === undefined ? Infinity : Number(values.count);
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  let n = 0;
  let ok = true;
  try {
    for await (const d of client.follow(q, abort.signal)) {
      ok = (await show(client, d, io, !!values.json)) && ok;
      if (++n >= max) break;
    }
  } finally {
    process.off('SIGINT', stop);
    abort.abort();
  }
  return ok ? 0 : 1;
}

/** `liaison inbox complain NOTICE_ID --reason CODE [--detail TEXT]`: prints the log index of the complaint. */
export async function inboxComplain(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { ...options, reason: { type: 'string' }, detail: { type: 'string' } },
    allowPositionals: true,
  });
  const [noticeId, ...rest] = positionals;
  if (!isUuid(noticeId) || rest.length > 0) throw new UsageError('needs one NOTICE_ID (a lower-case UUID)');
  if (!isComplaintReason(values.reason))
    throw new UsageError(`--reason must be one of ${COMPLAINT_REASONS.join(', ')}`);
  const detail = values.detail ?? '';
  if ([...detail].length > MAX_COMPLAINT_DETAIL)
    throw new UsageError(`--detail must be at most ${MAX_COMPLAINT_DETAIL} characters`);
  const { client } = setup(values);
  const filed = await client.fileComplaint({ noticeId, reason: values.reason, detail });
  if (values.json) io.out(JSON.stringify(filed) + '\n');
  else
    io.out(
      `complaint about ${filed.notice_id} (${filed.reason}) ${filed.duplicate ? 'was already recorded' : 'recorded'} at log index ${filed.log_index}\n`,
    );
  return 0;
}

export const inboxCommands = { 'inbox pull': inboxPull, 'inbox follow': inboxFollow, 'inbox complain': inboxComplain };
