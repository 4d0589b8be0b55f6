import { LiaisonError } from '../core/errors.js';
import { isSlug, subjectToken } from '../core/ids.js';
import type { MessageHeaders, StoredMessage, StorePort } from '../core/store-port.js';
import { STREAMS } from '../core/stream-names.js';
import { DELIVERY_HEADERS } from './plan.js';
import { integrity, streamWhere } from '../core/integrity.js';
import { deliveryDefect } from './inbox.js';

/**
 * The webhook dead-letter: stream DEADLETTER (broker/nats/streams.ts).
 *
 *   deadletter.webhook.<agency>   a delivery that failed every try: the delivery's
 *                                 JWE and labels, plus the attempts and the last error
 *   redeliver.webhook.<agency>    an operator's request to try one again; the
 *                                 webhook deliverer consumes these (durable `webhook-redeliver`)
 */
export const DEADLETTER_SUBJECTS = 'deadletter.webhook.*';
export const REDELIVER_SUBJECTS = 'redeliver.webhook.*';
export const deadletterSubject = (agency: string) => `deadletter.webhook.${subjectToken(agency, 'agency')}`;
export const redeliverSubject = (agency: string) => `redeliver.webhook.${subjectToken(agency, 'agency')}`;

export const WEBHOOK_HEADERS = {
  agency: 'Liaison-Agency',
  cursor: 'Liaison-Delivery-Cursor',
  attempts: 'Liaison-Webhook-Attempts',
  lastError: 'Liaison-Webhook-Last-Error',
  failedAt: 'Liaison-Webhook-Failed-At',
} as const;

export interface DeadLetter {
  /** DEADLETTER stream sequence: what `liaison webhook redeliver --seq` takes. */
  seq: number;
  agency: string;
  notice_id: string;
  /** The DELIVERIES sequence of the delivery. */
  cursor: number;
  operation: string;
  origin: { country: string; agency: string };
  type: string;
  attempts: number;
  last_error: string;
  failed_at: string;
}

const copyHeaders = (h: MessageHeaders | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const k of [...Object.values(DELIVERY_HEADERS), ...Object.values(WEBHOOK_HEADERS)]) {
    const v = h?.get(k);
    if (v) out[k] = v;
  }
  return out;
};

/** Park a delivery that failed every try. Msg-Id `dl:<key>`, so a crash between park and ack parks it once. */
export async function park(
  bus: StorePort,
  p: {
    agency: string;
    key: string;
    data: Uint8Array;
    headers: MessageHeaders | undefined;
    cursor: number;
    attempts: number;
    lastError: string;
    at: Date;
  },
): Promise<number> {
  const headers = {
    ...copyHeaders(p.headers),
    [WEBHOOK_HEADERS.agency]: p.agency,
    [WEBHOOK_HEADERS.cursor]: String(p.cursor),
    [WEBHOOK_HEADERS.attempts]: String(p.attempts),
    [WEBHOOK_HEADERS.lastError]: p.lastError,
    [WEBHOOK_HEADERS.failedAt]: p.at.toISOString(),
  };
  const ack = await bus.publish(deadletterSubject(p.agency), p.data, { msgID: `dl:${p.key}`, headers });
  return ack.seq;
}

function toDeadLetter(m: StoredMessage): DeadLetter {
  const get = (k: string) => m.header?.get(k) ?? '';
  return {
    seq: m.seq,
    agency: get(WEBHOOK_HEADERS.agency),
    notice_id: get(DELIVERY_HEADERS.noticeId),
    cursor: Number(get(WEBHOOK_HEADERS.cursor)),
    operation: get(DELIVERY_HEADERS.operation),
    origin: { country: get(DELIVERY_HEADERS.originCountry), agency: get(DELIVERY_HEADERS.origin) },
    type: get(DELIVERY_HEADERS.type),
    attempts: Number(get(WEBHOOK_HEADERS.attempts)),
    last_error: get(WEBHOOK_HEADERS.lastError),
    failed_at: get(WEBHOOK_HEADERS.failedAt),
  };
}

/** The parked deliveries (of one agency, or all), oldest first, at most `limit`. */
export async function listDeadLetters(
  bus: StorePort,
  opts: { agency?: string; limit?: number } = {},
): Promise<DeadLetter[]> {
  if (opts.agency !== undefined && !isSlug(opts.agency))
    throw new LiaisonError('bad-request', { publicDetail: 'agency must be a lower-case slug' });
  const subject = opts.agency === undefined ? DEADLETTER_SUBJECTS : deadletterSubject(opts.agency);
  const limit = Math.min(opts.limit ?? 1000, 10_000);
  const out: DeadLetter[] = [];
  let seq = 1;
  while (out.length < limit) {
    const m = await bus.nextMessage(STREAMS.deadletter, seq, subject, 'deadletter list');
    if (!m) break;
    seq = m.seq + 1;
    const dl = toDeadLetter(m);
    // Not a parked delivery (junk in DEADLETTER): skipped with a finding; the list shows the others.
    if (
      !isSlug(dl.agency) ||
      !Number.isSafeInteger(dl.cursor) ||
      !Number.isSafeInteger(dl.attempts) ||
      deliveryDefect(m.data, m.header) !== null
    ) {
      integrity.report(undefined, 'deadletter', streamWhere(STREAMS.deadletter, m.seq), 'not a parked delivery');
      continue;
    }
    out.push(dl);
  }
  return out;
}

/**
 * Ask the webhook deliverer to try a parked delivery again: copy it to
 * `redeliver.webhook.<agency>` (Msg-Id `rd:<seq>`: asking twice sends once),
 * then remove it from the dead-letter. If it fails every try again, it is
 * parked again under a new sequence.
 */
export async function requestRedelivery(bus: StorePort, seq: number): Promise<DeadLetter> {
  const m = await bus.getMessage(STREAMS.deadletter, seq);
  if (!m || !m.subject.startsWith('deadletter.webhook.'))
    throw new LiaisonError('not-found', { publicDetail: `no dead letter at ${seq}` });
  const dl = toDeadLetter(m);
  if (!isSlug(dl.agency) || deliveryDefect(m.data, m.header) !== null) {
    integrity.report(undefined, 'deadletter', streamWhere(STREAMS.deadletter, seq), 'not a parked delivery');
    throw new LiaisonError('not-found', { publicDetail: `no dead letter at ${seq}` });
  }
  await bus.publish(redeliverSubject(dl.agency), m.data, { msgID: `rd:${seq}`, headers: copyHeaders(m.header) });
  await bus.deleteMessage(STREAMS.deadletter, seq, 'deadletter delete');
  return dl;
}
