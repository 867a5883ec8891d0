/**
 * Conditional requests (RFC 9110 §13). One function per precondition, each returning a
 * result and writing nothing (as Go's checkIfMatch / checkIfNoneMatch / checkIfRange), and
 * `evaluatePreconditions` applying them in the order of §13.2.2.
 *
 * §13.2.1: preconditions are evaluated only when the response without them would have been
 * 2xx or 412 — the caller evaluates them after it found the file (404s come first).
 */
import { parseEntityTag, parseEntityTagList, strongMatch, weakMatch, type EntityTag } from './etag.ts';
import { parseHttpDate, toHttpDateSeconds } from './http-date.ts';

/** The request's conditional header fields, raw (as Node joins repeated list fields). */
export interface ConditionalHeaders {
  readonly ifMatch?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
  readonly ifModifiedSince?: string | undefined;
  readonly ifUnmodifiedSince?: string | undefined;
  readonly ifRange?: string | undefined;
}

/** Validators of the selected representation (what the 200 response would carry). */
export interface Validators {
  /** The ETag field value, e.g. `"abc"`; undefined when the representation has none. */
  readonly etag: string | undefined;
  /** The Last-Modified time in ms as sent (already capped at the response time); undefined when none. */
  readonly lastModifiedMs: number | undefined;
}

/** Go's condResult: a condition that is absent (or must be ignored) is `none`. */
export type ConditionResult = 'none' | 'true' | 'false';

export type PreconditionResult =
  | { readonly kind: 'proceed' }
  /** 304 Not Modified (GET/HEAD only). */
  | { readonly kind: 'not-modified'; readonly by: 'if-none-match' | 'if-modified-since' }
  /** 412 Precondition Failed. */
  | { readonly kind: 'precondition-failed'; readonly by: 'if-match' | 'if-unmodified-since' | 'if-none-match' };

function currentTag(v: Validators): EntityTag | undefined {
  return v.etag === undefined ? undefined : parseEntityTag(v.etag);
}

/**
 * §13.1.1 If-Match: true when the field is `*` and a current representation exists, or when
 * one listed entity tag matches the current one by STRONG comparison; false otherwise.
 */
export function checkIfMatch(value: string | undefined, v: Validators): ConditionResult {
  if (value === undefined) return 'none';
  const list = parseEntityTagList(value);
  // The route only evaluates conditions for a representation that exists.
  if (list === '*') return 'true';
  const tag = currentTag(v);
  if (tag === undefined) return 'false';
  return list.some((t) => strongMatch(t, tag)) ? 'true' : 'false';
}

/**
 * §13.1.4 If-Unmodified-Since: ignored when If-Match is present, when the value is not a
 * valid HTTP-date (including a list of dates), or when there is no modification date. False
 * when the representation was modified after the given date.
 */
export function checkIfUnmodifiedSince(value: string | undefined, v: Validators): ConditionResult {
  if (value === undefined || v.lastModifiedMs === undefined) return 'none';
  const date = parseHttpDate(value);
  if (date === undefined) return 'none';
  return toHttpDateSeconds(v.lastModifiedMs) <= date ? 'true' : 'false';
}

/**
 * §13.1.2 If-None-Match: false when the field is `*` and a current representation exists,
 * or when one listed tag matches the current one by WEAK comparison; true otherwise.
 */
export function checkIfNoneMatch(value: string | undefined, v: Validators): ConditionResult {
  if (value === undefined) return 'none';
  const list = parseEntityTagList(value);
  if (list === '*') return 'false';
  const tag = currentTag(v);
  if (tag === undefined) return 'true';
  return list.some((t) => weakMatch(t, tag)) ? 'false' : 'true';
}

/**
 * §13.1.3 If-Modified-Since: only for GET and HEAD; ignored when the value is not a valid
 * HTTP-date or is a list, or without a modification date. False ("not modified") when the
 * last modification is earlier than or equal to the given date.
 */
export function checkIfModifiedSince(method: string, value: string | undefined, v: Validators): ConditionResult {
  if (value === undefined || v.lastModifiedMs === undefined) return 'none';
  if (method !== 'GET' && method !== 'HEAD') return 'none';
  const date = parseHttpDate(value);
  if (date === undefined) return 'none';
  return toHttpDateSeconds(v.lastModifiedMs) <= date ? 'false' : 'true';
}

/**
 * §13.2.2, steps 1–4, in order:
 * 1. If-Match present: false → 412.
 * 2. Else If-Unmodified-Since present: false → 412.
 * 3. If-None-Match present: false → 304 for GET/HEAD, 412 otherwise.
 * 4. Else (GET/HEAD) If-Modified-Since present: false → 304.
 * Step 5 (If-Range) decides whether Range is honoured: see `evaluateIfRange`.
 */
/** Node's header bag: a repeated header arrives as a list. */
export type IncomingHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** One header's value; a repeated header is combined with ", " (RFC 9110 §5.3). */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The four §13.2.2 request preconditions (If-Range is evaluated with the range). */
export function conditionalHeadersFrom(h: IncomingHeaders): ConditionalHeaders {
  return {
    ifMatch: headerValue(h['if-match']),
    ifNoneMatch: headerValue(h['if-none-match']),
    ifModifiedSince: headerValue(h['if-modified-since']),
    ifUnmodifiedSince: headerValue(h['if-unmodified-since']),
  };
}

export function evaluatePreconditions(method: string, headers: ConditionalHeaders, v: Validators): PreconditionResult {
  // Step 1.
  const ifMatch = checkIfMatch(headers.ifMatch, v);
  if (ifMatch === 'false') return { kind: 'precondition-failed', by: 'if-match' };
  // Step 2: "When If-Match is not present, and If-Unmodified-Since is present".
  if (ifMatch === 'none' && checkIfUnmodifiedSince(headers.ifUnmodifiedSince, v) === 'false') {
    return { kind: 'precondition-failed', by: 'if-unmodified-since' };
  }
  // Step 3.
  const ifNoneMatch = checkIfNoneMatch(headers.ifNoneMatch, v);
  if (ifNoneMatch === 'false') {
    return method === 'GET' || method === 'HEAD'
      ? { kind: 'not-modified', by: 'if-none-match' }
      : { kind: 'precondition-failed', by: 'if-none-match' };
  }
  // Step 4: "When the method is GET or HEAD, If-None-Match is not present, and
  // If-Modified-Since is present".
  if (ifNoneMatch === 'none' && checkIfModifiedSince(method, headers.ifModifiedSince, v) === 'false') {
    return { kind: 'not-modified', by: 'if-modified-since' };
  }
  return { kind: 'proceed' };
}

/**
 * §13.1.5 If-Range, evaluated by the caller only for a GET that carries Range (§13.2.2 step
 * 5; "A server MUST ignore an If-Range header field received in a request that does not
 * contain a Range header field"). Returns whether the Range is to be honoured:
 * 1. an entity-tag: true only on a STRONG match (a weak tag never matches);
 * 2. an HTTP-date: true only when it exactly matches Last-Modified;
 * 3. otherwise false. When false, "the recipient MUST ignore the Range header field".
 * Absent If-Range → true.
 */
export function evaluateIfRange(value: string | undefined, v: Validators): boolean {
  if (value === undefined) return true;
  const text = value.trim();
  if (text.startsWith('"') || text.startsWith('W/')) {
    const given = parseEntityTag(text);
    const tag = currentTag(v);
    return given !== undefined && tag !== undefined && strongMatch(given, tag);
  }
  const date = parseHttpDate(text);
  if (date === undefined || v.lastModifiedMs === undefined) return false;
  return toHttpDateSeconds(v.lastModifiedMs) === date;
}
