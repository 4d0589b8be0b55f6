/**
 * What the signed log says about one of the agency's own notices (operation,
 * TLP, type, recipients), from GET /v1/notices/{id}/proof. The gateway answers
 * it only to the notice's origin, and only once a checkpoint covers the notice
 * (404 before, and for any other id: the same answer, so nothing is probed).
 * The entry is a hint for building a withdrawal: the broker checks the
 * withdrawal against the same entry, so a wrong hint is refused, not obeyed.
 */
import { makeClientAssertion } from './assertion.js';
import { HttpClientError, problemLine, readJson, type FetchLike } from './http.js';
import type { AgencyCredentials } from './credentials.js';

export interface OwnNoticeEntry {
  operation: string;
  tlp: string;
  type: string;
  recipients: string[];
  /** The envelope format it was sent in (jose, openpgp, jose-e2e, openpgp-e2e), when the entry names one. */
  format?: string;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The log entry's fields we use, checked (the gateway is trusted for availability, not for shape). */
export function parseNoticeEntry(entryB64u: unknown, noticeId: string): OwnNoticeEntry {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(Buffer.from(String(entryB64u), 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new HttpClientError(`the log entry of notice ${noticeId} is not JSON`);
  }
  const recipients = e?.recipients;
  if (
    e?.kind !== 'notice' ||
    e.notice_id !== noticeId ||
    !isString(e.operation) ||
    !isString(e.tlp) ||
    !isString(e.type) ||
    !Array.isArray(recipients) ||
    !recipients.every(isString)
  ) {
    throw new HttpClientError(`the log entry the gateway gave for notice ${noticeId} is not that notice's entry`);
  }
  return {
    operation: e.operation,
    tlp: e.tlp,
    type: e.type,
    recipients: recipients,
    ...(isString(e.format) ? { format: e.format } : {}),
  };
}

/** The entry of the agency's own notice `noticeId`, or undefined while no checkpoint covers it (or it is not the agency's). */
export async function fetchOwnNotice(
  url: string,
  fetch: FetchLike,
  creds: AgencyCredentials,
  brokerId: string,
  noticeId: string,
): Promise<OwnNoticeEntry | undefined> {
  const token = await makeClientAssertion(creds.agency, creds.signing, brokerId);
  const where = `GET ${url}/v1/notices/${noticeId}/proof`;
  const res = await fetch(`${url}/v1/notices/${encodeURIComponent(noticeId)}/proof`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) throw new HttpClientError(`${where} answered ${await problemLine(res)}`);
  const body = await readJson<{ entry?: unknown }>(res, where);
  return parseNoticeEntry(body.entry, noticeId);
}
