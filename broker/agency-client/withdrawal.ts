/**
 * A withdrawal or correction notice (schemas/notice/withdrawal/1.0) of one of
 * the agency's own notices, as `liaison notice withdraw` sends it. Pure: the
 * superseded notice's operation, TLP and recipients come from its log entry,
 * looked up beforehand (broker/agency-client/own-notice.ts).
 *
 * The broker's rules (docs/routing.md, "Withdrawal and correction") shape it:
 * `supersedes` is also in `references`; same operation as the original; TLP at
 * least as strict; addressees repeat the original's recipients (the broker
 * routes to those whatever they say, but a reader sees who it is meant for).
 */

export interface WithdrawalSpec {
  /** The new notice's id (a fresh UUID). */
  id: string;
  /** The id of the notice withdrawn or corrected. */
  supersedes: string;
  origin: { agency: string; country: string };
  operation: string;
  tlp: string;
  /** Who received the original (its log entry); empty when unknown. */
  recipients: readonly string[];
  reason: string;
  /** Given: a correction (action `correct`); absent: a withdrawal. */
  correction?: string | undefined;
  /** The header summary; by default one sentence naming the notice and the reason or correction. */
  summary?: string | undefined;
  language: string;
  priority: string;
  now: Date;
}

/** The header's maxItems for addressees and maxLength for free text. */
const MAX_ADDRESSEES = 200;
const MAX_TEXT = 2000;

/** At most `n` code points (JSON Schema counts those, not UTF-16 units). */
const clip = (s: string, n: number) => Array.from(s).slice(0, n).join('');

/** RFC 3339 in UTC to the second, as the samples write it. */
export const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function buildWithdrawal(spec: WithdrawalSpec): Record<string, unknown> {
  const correcting = spec.correction !== undefined;
  const summary =
    spec.summary ??
    (correcting
      ? `Correction of notice ${spec.supersedes}: ${spec.correction as string}`
      : `Withdrawal of notice ${spec.supersedes}: ${spec.reason}`);
  const addressees =
    spec.recipients.length > 0 && spec.recipients.length <= MAX_ADDRESSEES ? [...spec.recipients] : ['*'];
  return {
    id: spec.id,
    type: 'withdrawal',
    schema_version: '1.0',
    created_at: rfc3339(spec.now),
    operation: spec.operation,
    origin: { country: spec.origin.country, agency: spec.origin.agency },
    addressees,
    tlp: spec.tlp,
    priority: spec.priority,
    language: spec.language,
    summary: clip(summary, MAX_TEXT),
    // The origin vouching for a change to its own notice: a completely reliable source, confirmed information.
    evaluation: { source_reliability: 'A', information_credibility: 1 },
    references: [spec.supersedes],
    body: {
      action: correcting ? 'correct' : 'withdraw',
      supersedes: spec.supersedes,
      reason: spec.reason,
      ...(correcting ? { correction: spec.correction } : {}),
    },
  };
}
