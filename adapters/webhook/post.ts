import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isNonPublicLiteral, publicOnlyLookup } from './address-policy.js';

/** At most this much of a receiver's answer is read (and then thrown away). */
export const MAX_RESPONSE_BYTES = 4096;

export type PostOutcome = { ok: true; status: number } | { ok: false; status?: number; reason: string };

/**
 * Check a webhook URL from the registry (hostile input, like everything an
 * agency supplies): http or https only, no user-info, a host, at most 2048
 * characters. Returns the parsed URL or a reason.
 */
export function checkWebhookUrl(raw: unknown): URL | string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2048) return 'the webhook URL is missing or too long';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'the webhook URL does not parse';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'the webhook URL is not http(s)';
  if (url.username !== '' || url.password !== '') return 'the webhook URL carries credentials';
  if (url.hostname === '') return 'the webhook URL has no host';
  return url;
}

/**
 * One webhook POST. Bounded: the whole exchange (connect, send, response
 * headers, up to MAX_RESPONSE_BYTES of body) within `timeoutMs`; redirects are
 * never followed (a 3xx is a failure); the response body is not kept. Success
 * is a 2xx. The reason of a failure names a status or an error code, never
 * anything the receiver sent. Unless `allowPrivateNetworks`, only public
 * addresses are connected to (address-policy.ts).
 */
export function postWebhook(
  url: URL,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  policy: { allowPrivateNetworks: boolean } = { allowPrivateNetworks: false },
): Promise<PostOutcome> {
  if (!policy.allowPrivateNetworks && isNonPublicLiteral(url))
    return Promise.resolve({ ok: false, reason: 'error EADDRNOTPUBLIC' });
  const data = Buffer.from(body, 'utf8');
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const done = (o: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = request(url, {
      method: 'POST',
      headers: {
        ...headers,
        'content-length': String(data.length),
        'user-agent': 'liaison-webhook/1',
        connection: 'close',
      },
      agent: false,
      timeout: timeoutMs,
      maxHeaderSize: 16 * 1024,
      ...(policy.allowPrivateNetworks ? {} : { lookup: publicOnlyLookup }),
    });
    const timer = setTimeout(() => {
      req.destroy();
      done({ ok: false, reason: 'timeout' });
    }, timeoutMs);
    req.on('timeout', () => {
      req.destroy();
      done({ ok: false, reason: 'timeout' });
    });
    req.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, reason: `error ${e.code ?? 'request-failed'}` }));
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      let read = 0;
      const finish = () =>
        done(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, status, reason: `http ${status}` });
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        // Enough: the status is what counts; never buffer a receiver's body.
        if (read > MAX_RESPONSE_BYTES) {
          finish();
          res.destroy();
        }
      });
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    req.end(data);
  });
}
