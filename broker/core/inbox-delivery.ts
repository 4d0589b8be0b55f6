/**
 * One delivery as GET /v1/inbox, the SSE stream and webhooks carry it: the
 * wire format shared by the broker that serves it (broker/routing/inbox.ts)
 * and the agency client that reads it (broker/agency-client/), so neither
 * side imports the other.
 */
export interface InboxDelivery {
  /** The DELIVERIES stream sequence: pass it as `after` (or Last-Event-ID) to continue after this one. */
  cursor: number;
  notice_id: string;
  operation: string;
  origin: { country: string; agency: string };
  type: string;
  tlp: string;
  log_index: number;
  received_at: string;
  /** A JWE to the agency's encryption key (a flattened JSON JWE's text, or a compact JWE if stored before that form); its plaintext is the origin's signed notice. Absent on an OpenPGP delivery. */
  jwe?: string;
  /** For agencies with `delivery_format: 'openpgp'`: an armored OpenPGP message signed by the broker's OpenPGP key and encrypted to the agency, whose literal data is the origin's signed notice. */
  openpgp?: string;
  /**
   * In place of the content, when the notice was erased: the broker's erasure record
   * (broker/admin/erasure-record.ts; `record` is its compact JWS, typ liaison-erasure+jws).
   * `log_index` is then the index of the `notice-erased` event, `received_at` when it was erased.
   */
  erased?: { event_id: string; erased_at: string; record: string };
  /** End-to-end operations: the origin's envelope as received, `{"header", "body"}` (docs/end-to-end.md); only the recipient's own key opens its body. */
  e2e?: string;
}
