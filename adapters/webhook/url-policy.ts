import { lookup as dnsLookupAll } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isNonPublicAddress, isNonPublicLiteral } from './address-policy.js';
import { checkWebhookUrl } from './post.js';

/** How long a set-time look-up of a webhook host may take; past it the URL is accepted and judged again at each delivery. */
const SET_TIME_LOOKUP_MS = 1500;

/**
 * Why a webhook URL must not be stored (an operator or agency is setting it),
 * or null. The shape (checkWebhookUrl: http(s), no user:password), then, unless
 * private networks are allowed, the address: an IP literal, `localhost`, and
 * what the host resolves to now. A host that does not resolve now is accepted:
 * every delivery resolves it again and refuses a non-public answer
 * (publicOnlyLookup), so a later change of its DNS gains nothing.
 */
export async function webhookUrlRefusal(
  raw: unknown,
  policy: { allowPrivateNetworks: boolean },
): Promise<string | null> {
  const url = checkWebhookUrl(raw);
  if (typeof url === 'string') return url;
  if (policy.allowPrivateNetworks) return null;
  if (isNonPublicLiteral(url))
    return 'the webhook URL points at a loopback, private, link-local or otherwise non-public address';
  const host = url.hostname.replace(/\.$/, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return 'the webhook URL points at localhost';
  if (isIP(url.hostname.replace(/^\[(.*)\]$/, '$1')) !== 0) return null;
  let timer: NodeJS.Timeout | undefined;
  const answers = await Promise.race([
    dnsLookupAll(host, { all: true, verbatim: true }).catch(() => null),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), SET_TIME_LOOKUP_MS))),
  ]);
  clearTimeout(timer);
  if (answers && answers.some((a) => isNonPublicAddress(a.address)))
    return `the webhook host ${host} resolves to a non-public address`;
  return null;
}
