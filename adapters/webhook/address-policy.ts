/**
 * Where the broker may POST a webhook. A webhook URL comes from the registry
 * (an agency asks for it, an operator enters it), so it is hostile input like
 * the rest: without a check it could point the broker at itself (the admin
 * API on loopback), at NATS's monitoring port, at a cloud metadata service
 * (169.254.169.254) or at anything else on the hub's own networks (SSRF).
 *
 * By default only public unicast addresses are allowed. The check runs on the
 * addresses the connection actually uses: an IP literal in the URL, else every
 * address DNS returns for the host, inside the socket's own lookup (so a name
 * that resolves differently between a check and the connect is still caught).
 * A deployment whose agencies are reached over private links (a VPN, a
 * leased line) turns it off with `webhookAllowPrivateNetworks`.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** Special-purpose and non-public ranges (IANA IPv4/IPv6 special-purpose registries, RFC 6890). */
const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use IPv4/IPv6 translation
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

/** True for an address the broker must not POST to by default (IPv4-mapped IPv6 judged as its IPv4 address). */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return NOT_PUBLIC.check(address, 'ipv4');
  if (family !== 6) return true; // not an address at all: never connect to it
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return NOT_PUBLIC.check(mapped[1]!, 'ipv4');
  return NOT_PUBLIC.check(address, 'ipv6');
}

/** The error a refused address gives the request (its code is what the delivery log and dead-letter record). */
function refused(host: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`webhook host ${host} resolves to a non-public address`);
  e.code = 'EADDRNOTPUBLIC';
  return e;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request that refuses a host any of whose addresses is
 * not public. Node calls it for host names only (an IP literal is checked by
 * isNonPublicLiteral before the request is made).
 */
export function publicOnlyLookup(hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const list = addresses as LookupAddress[];
    if (list.length === 0 || list.some((a) => isNonPublicAddress(a.address))) return callback(refused(hostname), []);
    if ((options as LookupAllOptions).all) return callback(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
}

/** Whether a URL's host is an IP literal that is not public (Node does no lookup for a literal, so publicOnlyLookup never sees it). */
export function isNonPublicLiteral(url: URL): boolean {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) !== 0 && isNonPublicAddress(host);
}
