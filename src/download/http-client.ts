/**
 * The client's HTTP edge, on undici: one connection pool per origin (an Agent), HTTP/1.1 only
 * (segments need separate TCP connections, which HTTP/2 would multiplex onto one), and
 * redirects followed by hand so that credentials never cross origins.
 */
import { Agent, type Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { FerryError } from '../core/errors.ts';

export interface AgentOptions {
  /** Connections per origin (the segment count, plus one for the probe). */
  readonly connections: number;
  readonly connectTimeoutMs: number;
  /** No byte for this long while waiting for headers or body → timeout (retried). */
  readonly idleTimeoutMs: number;
}

export function createAgent(options: AgentOptions): Agent {
  return new Agent({
    connections: options.connections,
    pipelining: 1,
    allowH2: false,
    connectTimeout: options.connectTimeoutMs,
    headersTimeout: options.idleTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    keepAliveTimeout: 10_000,
  });
}

/** Header fields that carry credentials: sent to the origin the user named, never elsewhere. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** User-supplied headers plus the URL's userinfo, tied to the origin they were given for. */
export interface RequestIdentity {
  /** Origin of the URL the user gave; credentials go only there. */
  readonly origin: string;
  readonly headers: readonly (readonly [string, string])[];
}

/** Strips userinfo from the URL (turned into Basic auth for its own origin only). */
export function createRequestIdentity(url: URL, headers: readonly (readonly [string, string])[]): { url: URL; identity: RequestIdentity } {
  const clean = new URL(url.href);
  const out: (readonly [string, string])[] = [...headers];
  if (clean.username !== '' || clean.password !== '') {
    const user = decodeURIComponent(clean.username);
    const pass = decodeURIComponent(clean.password);
    if (!out.some(([n]) => n.toLowerCase() === 'authorization')) {
      out.push(['authorization', `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`]);
    }
    clean.username = '';
    clean.password = '';
  }
  return { url: clean, identity: { origin: clean.origin, headers: out } };
}

/** The headers for a request to `url`: credentials only when it is the user's own origin. */
export function headersFor(identity: RequestIdentity, url: URL, extra: Readonly<Record<string, string>>): Record<string, string> {
  const sameOrigin = url.origin === identity.origin;
  const out: Record<string, string> = { 'user-agent': 'ferry/0.1' };
  for (const [name, value] of identity.headers) {
    const lower = name.toLowerCase();
    if (!sameOrigin && CREDENTIAL_HEADERS.has(lower)) continue;
    out[lower] = out[lower] !== undefined && lower !== 'user-agent' ? `${out[lower]}, ${value}` : value;
  }
  for (const [name, value] of Object.entries(extra)) out[name.toLowerCase()] = value;
  return out;
}

export interface ClientResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Dispatcher.ResponseData['body'];
  /** The URL that answered (after redirects). */
  readonly url: URL;
  readonly redirects: number;
}

export interface SendOptions {
  readonly dispatcher: Dispatcher;
  readonly url: URL;
  readonly identity: RequestIdentity;
  readonly method?: Dispatcher.HttpMethod;
  /** Request-specific headers (Range, If-Range, …), added after the user's. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Dispatcher.DispatchOptions['body'];
  /** 0 = do not follow. */
  readonly maxRedirects: number;
  readonly signal?: AbortSignal;
  readonly highWaterMark?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Sends a request, following up to `maxRedirects` redirects (GET/HEAD only). */
export async function send(options: SendOptions): Promise<ClientResponse> {
  const method = options.method ?? 'GET';
  let url = options.url;
  for (let hop = 0; ; hop++) {
    const res = await options.dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method,
      headers: headersFor(options.identity, url, { 'accept-encoding': 'identity', ...options.headers }),
      body: options.body ?? null,
      signal: options.signal ?? null,
      highWaterMark: options.highWaterMark ?? 256 * 1024,
    });
    const location = headerValue(res.headers, 'location');
    if (!REDIRECTS.has(res.statusCode) || location === undefined || options.maxRedirects === 0 || (method !== 'GET' && method !== 'HEAD')) {
      return { status: res.statusCode, headers: res.headers, body: res.body, url, redirects: hop };
    }
    await res.body.dump().catch(() => {});
    if (hop >= options.maxRedirects) {
      throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `too many redirects (more than ${options.maxRedirects}); the last one pointed to ${redactUrl(location)}`);
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `redirect to an invalid Location ${JSON.stringify(location)}`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `redirect to an unsupported scheme ${next.protocol}`);
    }
    // Userinfo in a Location is never trusted as credentials.
    next.username = '';
    next.password = '';
    next.hash = '';
    url = next;
  }
}

/** One header as a string (repeated fields joined per RFC 9110 §5.3). */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

/** A URL for messages: no userinfo, no query (pre-signed URLs carry secrets there). */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(typeof url === 'string' ? url : url.href);
    u.username = '';
    u.password = '';
    const hadQuery = u.search !== '';
    u.search = '';
    u.hash = '';
    return hadQuery ? `${u.href}?…` : u.href;
  } catch {
    return '(invalid URL)';
  }
}
