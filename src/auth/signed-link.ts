/**
 * Signed links (SPEC §2.3): `?expires=UNIX&sig=…` (and `&rate=BYTES_PER_SEC` when a rate is
 * bound) on a /files or /zip URL. The signature is HMAC-SHA256 over the method, the path,
 * the other query parameters, the expiry and the bound rate, so changing any of them breaks
 * it. Several keys verify (rotation: the first signs, the others keep older links working);
 * signatures are compared in constant time. The canonical form decodes and re-encodes every
 * component, so a client that spells the same URL with different percent-encoding (`%7E` vs
 * `~`) still matches, while a different path never does.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Query parameters that belong to the signature itself. */
export const LINK_PARAMS = ['expires', 'sig', 'rate'] as const;

export interface LinkTarget {
  /** `GET` (HEAD is verified as GET: same representation, RFC 9110 §9.3.2). */
  readonly method: string;
  /** Path as in the URL, percent-encoded, e.g. `/files/a%20b.txt`. */
  readonly path: string;
  /** The other query parameters in order (the selection of a /zip link), e.g. `[['path','a'],['name','x.zip']]`. */
  readonly query?: ReadonlyArray<readonly [string, string]>;
}

export interface SignLinkInput extends LinkTarget {
  /** Unix seconds. */
  readonly expiresUnix: number;
  /** Bytes per second bound into the link. */
  readonly maxRateBytesPerSec?: number | undefined;
}

function canonicalMethod(method: string): string {
  const m = method.toUpperCase();
  return m === 'HEAD' ? 'GET' : m;
}

function canonicalPath(path: string): string | undefined {
  try {
    return path.split('/').map((seg) => encodeURIComponent(decodeURIComponent(seg))).join('/');
  } catch {
    return undefined;
  }
}

function canonicalString(method: string, path: string, query: ReadonlyArray<readonly [string, string]>, expires: string, rate: string): string {
  const q = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `ferry-link-v1\n${canonicalMethod(method)}\n${path}\n${q}\n${expires}\n${rate}`;
}

function hmac(key: Uint8Array, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

/** The query string to append to the link's path: `expires=…[&rate=…]&sig=…` (the selection parameters come first, unchanged). */
export function signLink(input: SignLinkInput, key: Uint8Array): string {
  const path = canonicalPath(input.path);
  if (path === undefined) throw new TypeError('malformed percent-encoding in link path');
  const expires = String(Math.floor(input.expiresUnix));
  const rate = input.maxRateBytesPerSec === undefined ? '' : String(Math.floor(input.maxRateBytesPerSec));
  const sig = hmac(key, canonicalString(input.method, path, input.query ?? [], expires, rate)).toString('base64url');
  return `expires=${expires}${rate === '' ? '' : `&rate=${rate}`}&sig=${sig}`;
}

/** Path and query of a signed link: the selection parameters, then `expires`, `rate`, `sig`. */
export function signedLinkPath(input: SignLinkInput, key: Uint8Array): string {
  const selection = (input.query ?? []).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${input.path}?${selection === '' ? '' : `${selection}&`}${signLink(input, key)}`;
}

export type LinkFailureReason = 'link-malformed' | 'link-signature' | 'link-expired';

export type LinkResult =
  | { readonly ok: true; readonly expiresUnix: number; readonly maxRateBytesPerSec: number | undefined }
  | { readonly ok: false; readonly reason: LinkFailureReason; readonly detail: string };

/** Splits a raw query string into ordered, decoded pairs (application/x-www-form-urlencoded). */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  return [...new URLSearchParams(rawQuery)];
}

/** True when a URL's query carries a link signature (the request must then verify as a link). */
export function hasLinkSignature(query: ReadonlyArray<readonly [string, string]>): boolean {
  return query.some(([k]) => k === 'sig');
}

/**
 * Verifies a request against its link parameters. `url` is the request target as received
 * (path and query, percent-encoded). Signature first, then expiry: a tampered expiry is a bad
 * signature, an honest old link is expired.
 */
export function verifySignedLink(method: string, url: string, keys: readonly Uint8Array[], nowMs: number): LinkResult {
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = parseQuery(q === -1 ? '' : url.slice(q + 1));
  const get = (name: string): string[] => query.filter(([k]) => k === name).map(([, v]) => v);
  const expires = get('expires');
  const sig = get('sig');
  const rate = get('rate');
  const malformed = (detail: string): LinkResult => ({ ok: false, reason: 'link-malformed', detail });
  if (expires.length !== 1 || sig.length !== 1 || rate.length > 1) return malformed('A signed link needs exactly one expires and one sig parameter');
  const expiresText = expires[0]!;
  const rateText = rate[0] ?? '';
  if (!/^\d{1,12}$/.test(expiresText)) return malformed('expires must be a Unix time in seconds');
  if (rateText !== '' && !/^[1-9]\d{0,15}$/.test(rateText)) return malformed('rate must be a positive integer (bytes per second)');
  const given = Buffer.from(sig[0]!, 'base64url');
  if (given.length !== 32) return malformed('sig is not an HMAC-SHA256 signature');
  const path = canonicalPath(rawPath);
  if (path === undefined) return malformed('malformed percent-encoding in path');
  const rest = query.filter(([k]) => !(LINK_PARAMS as readonly string[]).includes(k));
  const text = canonicalString(method, path, rest, expiresText, rateText);
  let valid = false;
  for (const key of keys) {
    // Every key is tried (no early exit), each comparison in constant time.
    if (timingSafeEqual(hmac(key, text), given)) valid = true;
  }
  if (!valid) return { ok: false, reason: 'link-signature', detail: 'The link signature does not match (the link was changed or its key retired)' };
  const expiresUnix = Number(expiresText);
  if (nowMs >= expiresUnix * 1000) return { ok: false, reason: 'link-expired', detail: 'The link expired' };
  return { ok: true, expiresUnix, maxRateBytesPerSec: rateText === '' ? undefined : Number(rateText) };
}
