/**
 * Retrying a request the gateway answered 503 (shedding load, NATS away), as
 * the integration guide asks of every client: wait what `Retry-After` says,
 * send the same bytes again, within a bound. Only for requests that are safe
 * to repeat: a sealed notice is (the notice id is the dedupe key; a repeat is
 * answered as a duplicate with the original receipt), and so is an admin
 * change (its idempotency id).
 */
import { HttpClientError, type FetchLike } from './http.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The most time spent waiting between attempts, in all; a Retry-After that would go past it ends the retries. */
  maxWaitMs: number;
  /** The wait when a 503 carries no usable Retry-After: doubled on each further attempt. */
  fallbackWaitMs: number;
  /**
   * Whether a request that got no answer (`fetch` threw this) is sent again,
   * after the fallback wait; the last attempt's error is thrown. Unset: thrown
   * at once. Only for requests whose repeat the broker recognises: a request
   * that got no answer may still have been carried out.
   */
  retryUnanswered?: (error: unknown) => boolean;
  /** Told, in one line, before each wait and when giving up. */
  report?: (line: string) => void;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

/** `liaison notice send`: 5 attempts within a minute of waiting. */
export const SEND_RETRY: RetryPolicy = { maxAttempts: 5, maxWaitMs: 60_000, fallbackWaitMs: 1000 };

/** `liaison admin` changes: 3 attempts, also when the gateway could not be reached (the change's id makes a repeat harmless). */
export const ADMIN_RETRY: RetryPolicy = {
  maxAttempts: 3,
  maxWaitMs: 60_000,
  fallbackWaitMs: 1000,
  retryUnanswered: (e) => e instanceof HttpClientError,
};

/**
 * The wait a `Retry-After` value asks for (RFC 9110 §10.2.3): delay-seconds or
 * an HTTP-date (a date in the past is no wait). Anything else is undefined.
 */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  // An HTTP-date names its weekday, its month and GMT; Date.parse alone would take "1" or "2026".
  if (!/^[A-Za-z]{3},? .*GMT$/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });

/**
 * `fetch` that sends again after a 503, waiting what Retry-After says, until an
 * answer that is not 503, the last attempt, or a wait past the bound: then the
 * last answer is returned as it came (the caller reports the 503). With
 * `retryUnanswered`, also after no answer, bounded alike.
 */
export function retrying(fetch: FetchLike, policy: RetryPolicy): FetchLike {
  const sleep = policy.sleep ?? defaultSleep;
  const now = policy.now ?? Date.now;
  return async (url, init = {}) => {
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, init);
      } catch (e) {
        if (init.signal?.aborted || !policy.retryUnanswered?.(e)) throw e;
        const wait = policy.fallbackWaitMs * 2 ** (attempt - 1);
        if (attempt >= policy.maxAttempts || waited + wait > policy.maxWaitMs) {
          policy.report?.(`no answer from the broker ${attempt} ${attempt === 1 ? 'time' : 'times'}; giving up`);
          throw e;
        }
        policy.report?.(
          `no answer from the broker (${(e as Error).message}); attempt ${attempt + 1} of ${policy.maxAttempts} in ${Math.ceil(wait / 1000)} s`,
        );
        await sleep(wait, init.signal);
        waited += wait;
        continue;
      }
      if (res.status !== 503) return res;
      if (attempt >= policy.maxAttempts) {
        policy.report?.(`503 from the broker ${attempt} times; giving up`);
        return res;
      }
      const wait = retryAfterMs(res.headers.get('retry-after'), now()) ?? policy.fallbackWaitMs * 2 ** (attempt - 1);
      if (waited + wait > policy.maxWaitMs) {
        policy.report?.(
          `503 from the broker, which asks to wait ${Math.ceil(wait / 1000)} s: past the ${policy.maxWaitMs / 1000} s this command waits in all; giving up`,
        );
        return res;
      }
      await res.body?.cancel().catch(() => undefined);
      policy.report?.(
        `503 from the broker; attempt ${attempt + 1} of ${policy.maxAttempts} in ${Math.ceil(wait / 1000)} s (Retry-After)`,
      );
      await sleep(wait, init.signal);
      waited += wait;
    }
  };
}
