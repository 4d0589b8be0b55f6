import type { JWK } from 'jose';
import { makeClientAssertion } from './assertion.js';
import type { FetchLike } from './http.js';
import { CodedError, isProblemCode, type CodeOf, type ProblemCode } from '../core/errors.js';
import type { AgencyKey, OpenPgpAgencyKey } from '../registry/model.js';
import type { InboxDelivery } from '../core/inbox-delivery.js';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import {
  checkComplaintClaims,
  COMPLAINT_TYP,
  type ComplaintReason,
  type RecordedComplaint,
} from '../core/complaint.js';
import { signRecipientJws } from '../keys/recipient-jws.js';
import { openErasureRecord, type ErasureRecord } from '../admin/erasure-record.js';
import { DeliveryVerificationError, openDelivery, openOpenPgpDelivery, type OpenedDelivery } from './open-delivery.js';
import { openEndToEnd } from './end-to-end.js';
import { isOpenPgpE2e, openEndToEndOpenPgp } from './end-to-end-openpgp.js';
import { createNoticeValidator, type NoticeValidator } from '../schemas/notice-validator.js';

/** The largest SSE event the client holds while it is incomplete: a delivery is at most the body limit (1 MiB) sealed, with room to spare. */
const SSE_MAX_EVENT_BYTES = 8 * 1024 * 1024;

/** An agency's client for its inbox: pull, follow (SSE), and open (decrypt + verify origin). Used by the CLI and the tests. */
export interface InboxQuery {
  after?: number;
  limit?: number;
  operation?: string;
  origin?: string;
  type?: string;
}

/** The gateway's problem code, else what kept the client from reading the answer. */
export type InboxClientErrorCode = ProblemCode | CodeOf<'inbox-client'>;

export class InboxClientError extends CodedError<InboxClientErrorCode> {
  constructor(
    readonly status: number,
    code: InboxClientErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

export interface InboxClientOptions {
  /** Base URL of the broker, e.g. http://127.0.0.1:8080 */
  url: string;
  agency: string;
  /** The agency's private signing JWK (client assertions). */
  signingKey: JWK;
  /** The agency's private encryption JWK (deliveries). */
  encryptionKey: JWK;
  /** The agency's OpenPGP private key, armored (`openpgp.private_armored` of its credentials): opens OpenPGP deliveries. */
  openPgpKey?: string | undefined;
  /** The broker id (aud of client assertions); read from GET /v1/keys when not given. */
  brokerId?: string;
  /** The broker's OpenPGP public key (armored), which signs OpenPGP deliveries; read from GET /v1/keys when not given. */
  brokerOpenPgpKey?: string;
  /** How to make requests: the global fetch by default; the CLI passes clientFetch (broker/agency-client/http.ts) for mutual TLS. */
  fetch?: FetchLike;
}

const query = (q: Record<string, string | number | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};

async function problem(res: Response): Promise<InboxClientError> {
  let body: { code?: string; title?: string; detail?: string } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    /* not JSON */
  }
  return new InboxClientError(
    res.status,
    isProblemCode(body.code) ? body.code : 'http-error',
    `${res.status} ${body.code ?? ''}: ${body.title ?? res.statusText}${body.detail ? ` ${body.detail}` : ''}`,
  );
}

export class InboxClient {
  readonly #keys = new Map<string, Promise<{ keys: AgencyKey[]; openpgp_keys?: OpenPgpAgencyKey[] }>>();
  #validator: NoticeValidator | undefined;
  #brokerKeys: Promise<{ broker: string; openpgp?: string; keys?: JWK[] }> | undefined;
  readonly #fetch: FetchLike;

  constructor(private readonly opts: InboxClientOptions) {
    this.#fetch = opts.fetch ?? ((url, init) => fetch(url, init));
  }

  /** GET /v1/keys once, for what the options do not give: the broker id and its OpenPGP key. */
  #published(): Promise<{ broker: string; openpgp?: string; keys?: JWK[] }> {
    if (!this.#brokerKeys) {
      const p = (async () => {
        const res = await this.#fetch(`${this.#base}/v1/keys`);
        if (!res.ok) throw await problem(res);
        return (await res.json()) as { broker: string; openpgp?: string; keys?: JWK[] };
      })();
      p.catch(() => (this.#brokerKeys = undefined));
      this.#brokerKeys = p;
    }
    return this.#brokerKeys;
  }

  get #base() {
    return this.opts.url.replace(/\/+$/, '');
  }

  async #authorization(): Promise<string> {
    const broker = this.opts.brokerId ?? (await this.#published()).broker;
    return `Bearer ${await makeClientAssertion(this.opts.agency, this.opts.signingKey, broker)}`;
  }

  /** One page of the inbox after a cursor. */
  async pull(q: InboxQuery = {}): Promise<{ deliveries: InboxDelivery[]; next: number }> {
    const res = await this.#fetch(`${this.#base}/v1/inbox${query({ ...q })}`, {
      headers: { authorization: await this.#authorization() },
    });
    if (!res.ok) throw await problem(res);
    return (await res.json()) as { deliveries: InboxDelivery[]; next: number };
  }

  /**
   * File a signed complaint about a notice delivered to this agency
   * (schemas/complaint.schema.json): signed with the agency's signing key,
   * logged by the broker. The claims are checked here first, so a bad reason
   * or an oversize detail never leaves the client.
   */
  async fileComplaint(c: {
    noticeId: string;
    reason: ComplaintReason;
    detail?: string;
    complainedAt?: Date;
  }): Promise<RecordedComplaint> {
    const claims = checkComplaintClaims({
      notice_id: c.noticeId,
      agency: this.opts.agency,
      reason: c.reason,
      detail: c.detail ?? '',
      complained_at: (c.complainedAt ?? new Date()).toISOString(),
    });
    const jws = await signRecipientJws(claims, this.opts.signingKey, COMPLAINT_TYP);
    const res = await this.#fetch(`${this.#base}/v1/inbox/complaint`, {
      method: 'POST',
      headers: { authorization: await this.#authorization(), 'content-type': 'application/jose' },
      body: jws,
    });
    if (!res.ok) throw await problem(res);
    return (await res.json()) as RecordedComplaint;
  }

  /** A member agency's key directory entry (with history), cached for the life of the client. */
  #directory(id: string): Promise<{ keys: AgencyKey[]; openpgp_keys?: OpenPgpAgencyKey[] }> {
    let p = this.#keys.get(id);
    if (!p) {
      p = (async () => {
        const res = await this.#fetch(`${this.#base}/v1/registry/agencies/${encodeURIComponent(id)}/keys`, {
          headers: { authorization: await this.#authorization() },
        });
        if (!res.ok) throw await problem(res);
        return (await res.json()) as { keys: AgencyKey[]; openpgp_keys?: OpenPgpAgencyKey[] };
      })();
      p.catch(() => this.#keys.delete(id));
      this.#keys.set(id, p);
    }
    return p;
  }

  /** A member agency's keys (with history), cached for the life of the client. */
  async agencyKeys(id: string): Promise<readonly AgencyKey[]> {
    return (await this.#directory(id)).keys;
  }

  /** A member agency's OpenPGP certificates (with history). */
  async agencyOpenPgpKeys(id: string): Promise<readonly OpenPgpAgencyKey[]> {
    return (await this.#directory(id)).openpgp_keys ?? [];
  }

  /**
   * Decrypt with this agency's key and verify the origin's signature against
   * the origin's registered key (JWK or OpenPGP); an OpenPGP delivery also
   * the broker's signature on it.
   */
  async open(d: InboxDelivery): Promise<OpenedDelivery> {
    const originKeys = (id: string) => this.agencyKeys(id);
    const originOpenPgpKeys = (id: string) => this.agencyOpenPgpKeys(id);
    // End to end: opened with this agency's own key, and the notice validated here (the hub could not).
    if (d.e2e !== undefined) {
      const validator = (this.#validator ??= createNoticeValidator());
      if (!isOpenPgpE2e(d.e2e)) return openEndToEnd(d, this.opts.encryptionKey, originKeys, validator);
      if (!this.opts.openPgpKey)
        throw new DeliveryVerificationError(
          'decrypt-failed',
          "an OpenPGP end-to-end delivery, and this agency's credentials hold no OpenPGP private key (openpgp.private_armored)",
        );
      return openEndToEndOpenPgp(d, this.opts.openPgpKey, originOpenPgpKeys, validator);
    }
    if (d.openpgp === undefined) return openDelivery(d, this.opts.encryptionKey, originKeys, originOpenPgpKeys);
    if (!this.opts.openPgpKey)
      throw new DeliveryVerificationError(
        'decrypt-failed',
        "an OpenPGP delivery, and this agency's credentials hold no OpenPGP private key (openpgp.private_armored)",
      );
    const broker = this.opts.brokerOpenPgpKey ?? (await this.#published()).openpgp;
    if (!broker)
      throw new DeliveryVerificationError(
        'key-unknown',
        'an OpenPGP delivery, and the broker publishes no OpenPGP key (GET /v1/keys, openpgp)',
      );
    return openOpenPgpDelivery(d, this.opts.openPgpKey, broker, originKeys, originOpenPgpKeys);
  }

  /**
   * Verify the erasure record an inbox item carries in place of an erased
   * notice: a compact JWS by a broker signing key (GET /v1/keys) that names
   * this notice and this erasure event. Throws `signature-invalid` on a forgery.
   */
  async openErasure(d: InboxDelivery): Promise<ErasureRecord> {
    if (!d.erased) throw new DeliveryVerificationError('signature-invalid', 'this delivery is not an erasure record');
    let record: ErasureRecord;
    try {
      record = openErasureRecord(d.erased.record, (await this.#published()).keys ?? []);
    } catch (e) {
      throw new DeliveryVerificationError('signature-invalid', `the erasure record ${(e as Error).message}`);
    }
    if (record.notice_id !== d.notice_id || record.event_id !== d.erased.event_id)
      throw new DeliveryVerificationError('signature-invalid', 'the erasure record names another notice or event');
    return record;
  }

  /**
   * Follow the inbox over Server-Sent Events from a cursor (sent as
   * Last-Event-ID) until `signal` aborts or the server ends the stream.
   * `onHeartbeat` sees the comment lines.
   */
  async *follow(
    q: Omit<InboxQuery, 'limit'>,
    signal: AbortSignal,
    onHeartbeat?: () => void,
  ): AsyncGenerator<InboxDelivery> {
    const { after, ...filters } = q;
    const headers: Record<string, string> = { authorization: await this.#authorization(), accept: 'text/event-stream' };
    if (after !== undefined) headers['last-event-id'] = String(after);
    let res: Response;
    try {
      res = await this.#fetch(`${this.#base}/v1/inbox/stream${query(filters)}`, { headers, signal });
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    }
    if (!res.ok || !res.body) throw await problem(res);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const events: EventSourceMessage[] = [];
    let failure: Error | undefined;
    const parser = createParser({
      onEvent: (e) => void events.push(e),
      onComment: () => onHeartbeat?.(),
      // Unknown fields and a bad retry are ignored, as the SSE spec says; an event that never ends is not.
      onError: (e) => {
        if (e.type === 'max-buffer-size-exceeded')
          failure ??= new InboxClientError(
            res.status,
            'stream-malformed',
            `the inbox stream cannot be read: ${e.message}`,
          );
      },
      maxBufferSize: SSE_MAX_EVENT_BYTES,
    });
    try {
      for (;;) {
        let chunk;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (signal.aborted) return;
          throw e;
        }
        if (chunk.done) return;
        parser.feed(decoder.decode(chunk.value as Uint8Array, { stream: true }));
        for (let e = events.shift(); e; e = events.shift()) {
          if (e.event !== 'delivery' || !e.data) continue;
          let delivery: InboxDelivery;
          try {
            delivery = JSON.parse(e.data) as InboxDelivery;
          } catch {
            throw new InboxClientError(
              res.status,
              'stream-malformed',
              'the inbox stream sent a delivery that is not JSON',
            );
          }
          yield delivery;
        }
        if (failure) throw failure;
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }
}
