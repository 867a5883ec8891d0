/**
 * Which hops of a request are trusted proxies (`--trust-proxy`), and what that makes of the
 * forwarding headers. The client address is the right-most address of the chain
 * `X-Forwarded-For, socket peer` that is not a trusted proxy (what proxy-addr, and so
 * Fastify's `request.ip`, computes with the same trust function): an appending proxy puts
 * the address it saw last, so everything to its left is whatever the client wrote.
 * X-Forwarded-Proto/-Host/-Prefix are believed only when the socket peer itself is trusted,
 * and then only their last value (the one the nearest proxy set or appended).
 */
import { BlockList, isIP } from 'node:net';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { ProxyTrust } from '../config/index.ts';

/** proxy-addr's trust function shape: `address` is hop `hop` (0 = the socket peer). */
export type TrustFunction = (address: string, hop: number) => boolean;

const NAMED_RANGES: Readonly<Record<string, ReadonlyArray<readonly [string, number, 'ipv4' | 'ipv6']>>> = {
  loopback: [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']],
  linklocal: [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']],
  uniquelocal: [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['fc00::', 7, 'ipv6']],
};

/** `::ffff:10.1.2.3` → `10.1.2.3`, so one IPv4 rule covers both spellings. */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a) ? a.slice(7) : a;
}

function familyOf(address: string): 'ipv4' | 'ipv6' | undefined {
  const f = isIP(address);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
}

/**
 * The trust function for a `--trust-proxy` value; `undefined` when off. `true` trusts a proxy
 * on the same host (loopback), never every hop: trusting everything would make the client
 * address whatever the left-most X-Forwarded-For entry says.
 */
export function compileProxyTrust(trust: ProxyTrust): TrustFunction | undefined {
  if (trust === false) return undefined;
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  const entries = trust === true ? ['loopback'] : trust;
  const list = new BlockList();
  for (const entry of entries) {
    const named = NAMED_RANGES[entry.toLowerCase()];
    if (named !== undefined) {
      for (const [net, prefix, type] of named) list.addSubnet(net, prefix, type);
      continue;
    }
    const slash = entry.indexOf('/');
    const address = normalizeAddress(slash === -1 ? entry : entry.slice(0, slash));
    const type = familyOf(address);
    // The option parser has validated every entry; this guards direct callers.
    if (type === undefined) throw new TypeError(`not an IP address or CIDR: ${entry}`);
    if (slash === -1) list.addAddress(address, type);
    else list.addSubnet(address, Number(entry.slice(slash + 1)), type);
  }
  return (address) => {
    const a = normalizeAddress(address);
    const type = familyOf(a);
    return type !== undefined && list.check(a, type);
  };
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * The chain of hops, nearest first: the socket peer, then X-Forwarded-For from right to left,
 * cut after the first hop that is not trusted (that hop is the client).
 */
export function forwardedChain(peer: string, xForwardedFor: string | undefined, trust: TrustFunction | undefined): string[] {
  const chain = [peer];
  if (trust === undefined || xForwardedFor === undefined) return chain;
  const listed = xForwardedFor.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (let hop = 0; hop < listed.length + 1; hop++) {
    if (!trust(chain[hop]!, hop)) break;
    const next = listed[listed.length - 1 - hop];
    if (next === undefined) break;
    chain.push(next);
  }
  return chain;
}

/** The client address: the right-most hop that is not a trusted proxy. */
export function resolveClientAddress(peer: string, xForwardedFor: string | undefined, trust: TrustFunction | undefined): string {
  const chain = forwardedChain(peer, xForwardedFor, trust);
  return chain[chain.length - 1]!;
}

/**
 * Header fields by which a proxy (or anything claiming to be one) says it forwarded the
 * request. A request carrying any of them is never "local", whatever --trust-proxy says: a
 * reverse proxy on the same host connects from loopback for every remote client.
 */
export const FORWARDING_HEADERS = [
  'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix',
  'x-forwarded-server', 'x-real-ip', 'via', 'x-client-ip', 'true-client-ip', 'cf-connecting-ip', 'x-cluster-client-ip',
  'fastly-client-ip', 'x-original-forwarded-for', 'forwarded-for', 'x-forwarded',
] as const;

export function hasForwardingHeader(headers: IncomingHttpHeaders): boolean {
  return FORWARDING_HEADERS.some((name) => headers[name] !== undefined);
}

const FORWARDED_REQUESTS = new WeakSet<IncomingMessage>();

/** Whether the request carried a forwarding header when it arrived (before sanitising). */
export function wasForwarded(req: IncomingMessage): boolean {
  return FORWARDED_REQUESTS.has(req);
}

/** Forwarding headers whose values name the request's URL (scheme, host, path prefix). */
const URL_HEADERS = ['x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-prefix'] as const;

/**
 * Runs once per request before any route sees it: remembers whether it was forwarded, then
 * removes X-Forwarded-Proto/-Host/-Prefix unless the socket peer is a trusted proxy, and
 * reduces each to its last value when it is (so every consumer, whichever end of the list
 * it reads, sees what the nearest trusted proxy said).
 */
export function sanitizeForwardedHeaders(req: IncomingMessage, trust: TrustFunction | undefined): void {
  const headers = req.headers;
  if (!hasForwardingHeader(headers)) return;
  FORWARDED_REQUESTS.add(req);
  const peer = req.socket.remoteAddress;
  const peerTrusted = trust !== undefined && peer !== undefined && trust(peer, 0);
  for (const name of URL_HEADERS) {
    const value = headerText(headers[name]);
    if (value === undefined) continue;
    const last = value.split(',').map((s) => s.trim()).filter((s) => s !== '').pop();
    if (!peerTrusted || last === undefined) delete headers[name];
    else headers[name] = last;
  }
}
