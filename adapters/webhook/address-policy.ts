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

/** The 16 bytes of an IPv6 address (zone id dropped, an embedded dotted IPv4 tail read), or null when it is not one. */
function ipv6Bytes(address: string): Uint8Array | null {
  const text = address.replace(/%.*$/, '');
  if (isIP(text) !== 6) return null;
  let head = text;
  const groups: number[] = [];
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4)
    head =
      text.slice(0, v4.index) + `${((+v4[1]! << 8) | +v4[2]!).toString(16)}:${((+v4[3]! << 8) | +v4[4]!).toString(16)}`;
  const [left, right] = head.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const l = parse(left);
  const r = right === undefined ? [] : parse(right);
  groups.push(...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r);
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => ((bytes[2 * i] = g >> 8), (bytes[2 * i + 1] = g & 0xff)));
  return bytes;
}

const startsWith = (b: Uint8Array, prefix: readonly number[]) => prefix.every((x, i) => b[i] === x);
const ipv4At = (b: Uint8Array, at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/**
 * IPv6 forms that carry an IPv4 address a packet may end up at, and where:
 * IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 (in any spelling, e.g.
 * ::7f00:1), IPv4-translated ::ffff:0:0:0/96, the NAT64 well-known prefix
 * 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16 (RFC 3056).
 */
function embeddedIpv4(b: Uint8Array): string | null {
  const zeros = (n: number) => new Array<number>(n).fill(0);
  if (startsWith(b, [...zeros(10), 0xff, 0xff]) || startsWith(b, zeros(12))) return ipv4At(b, 12);
  if (startsWith(b, [...zeros(8), 0xff, 0xff, 0, 0])) return ipv4At(b, 12);
  if (startsWith(b, [0x00, 0x64, 0xff, 0x9b, ...zeros(8)])) return ipv4At(b, 12);
  if (startsWith(b, [0x20, 0x02])) return ipv4At(b, 2);
  return null;
}

/** True for an address the broker must not POST to by default; an IPv6 form that embeds an IPv4 address is judged by that address too. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return NOT_PUBLIC.check(address, 'ipv4');
  const bytes = family === 6 ? ipv6Bytes(address) : null;
  if (!bytes) return true; // not an address at all: never connect to it
  if (address.includes('%')) return true; // a zone id: link-local by definition
  const v4 = embeddedIpv4(bytes);
  if (v4 !== null && NOT_PUBLIC.check(v4, 'ipv4')) return true;
  // Teredo (2001::/32) tunnels to an address the hub cannot judge.
  if (startsWith(bytes, [0x20, 0x01, 0x00, 0x00])) return true;
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
export function publicOnlyLookup(
  hostname: string,
  options: LookupOneOptions | LookupAllOptions,
  callback: LookupCallback,
): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const list = addresses;
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
