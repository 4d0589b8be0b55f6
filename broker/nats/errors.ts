/**
 * What a failed NATS call means to the broker, decided here once.
 *
 * - `isNotFound`: JetStream answered that the stream, consumer or message is
 *   not there (a missing or deleted message, a missing KV key read as a
 *   message, a bucket or consumer never made). A caller turns that into its
 *   own answer (null, an empty page, "not logged"), never into a failure.
 * - `natsUnavailable`: anything else (a timeout, a lost connection, a leader
 *   election) is the one `unavailable` (503). It carries no Retry-After: every
 *   503 the gateway sends carries the configured `retryAfterSeconds`, added at
 *   the HTTP edge (http/problem.ts), so no call site can pick its own.
 * - `isWrongLastSequence`: a conditional write lost to another writer.
 */
import { unavailable } from '../core/errors.js';

/** JetStream's error codes (api_error.err_code) for what is not there, with the text nats-server gives them. */
const NOT_FOUND = {
  stream: { errCode: 10059, text: /stream not found/i },
  consumer: { errCode: 10014, text: /consumer not found/i },
  message: { errCode: 10037, text: /no message found/i },
} as const;

export type NotFoundKind = keyof typeof NOT_FOUND;

interface NatsApiError {
  code?: unknown;
  message?: unknown;
  api_error?: { code?: unknown; err_code?: unknown };
}

/**
 * Whether a nats.js error says that something is not there: any JetStream
 * 404, or only a missing stream, consumer or message when `kind` is given
 * (deleting a consumer that is gone is fine; its stream being gone is not).
 */
export function isNotFound(err: unknown, kind?: NotFoundKind): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as NatsApiError;
  const message = typeof e.message === 'string' ? e.message : '';
  const kinds = kind === undefined ? Object.values(NOT_FOUND) : [NOT_FOUND[kind]];
  if (kinds.some((k) => e.api_error?.err_code === k.errCode || k.text.test(message))) return true;
  return kind === undefined && (e.code === '404' || e.api_error?.code === 404);
}

/**
 * Whether a write that expected a last sequence (a KV create or update, a
 * publish with expectLastSequence) was refused because someone wrote first:
 * JetStream's 10071, also when wrapped as the `cause` of a translated error.
 */
export function isWrongLastSequence(err: unknown): boolean {
  const is = (x: unknown) => {
    if (typeof x !== 'object' || x === null) return false;
    const e = x as NatsApiError;
    return (
      e.api_error?.err_code === 10071 ||
      (typeof e.message === 'string' && /wrong last sequence|key exists/i.test(e.message))
    );
  };
  return is(err) || is((err as { cause?: unknown } | null)?.cause);
}

/** A failed NATS call as the one `unavailable` (503); an error that is already a LiaisonError is kept as it is. */
export const natsUnavailable = unavailable;
