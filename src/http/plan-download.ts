/**
 * The answer to a GET or HEAD of one representation, decided before anything is written
 * (as @fastify/send's `{statusCode, headers, stream}`, and Go's `serveContent`, which runs
 * checkPreconditions → checkIfRange → parseRange → sumRangesSize in one place).
 *
 * Order (RFC 9110 §13.2.2): preconditions (steps 1–4: 412 or 304) → If-Range (step 5) →
 * Range (§14.2, GET only) → 416 → one part or `multipart/byteranges` (§14.6) → HEAD (same
 * header fields as GET, no content, §9.3.2). The caller streams the planned parts, maps the
 * refusals to its errors, and adds the header fields that do not depend on the plan.
 */
import { evaluatePreconditions, evaluateIfRange, conditionalHeadersFrom, headerValue, type IncomingHeaders, type Validators } from './preconditions.ts';
import { planRanges, formatContentRange, type ByteRange } from './range.ts';
import { planMultipartByteranges, generateBoundary } from './multipart.ts';

/** Response header fields as planned (a structural subset of node:http's OutgoingHttpHeaders). */
export type PlannedHeaders = Record<string, string | number>;

/** A piece of the body: framing text (latin1, from multipart/byteranges) or a byte range of the representation. */
export type PlannedPart = string | ByteRange;

export interface PlanDownloadOptions {
  readonly method: 'GET' | 'HEAD';
  readonly requestHeaders: IncomingHeaders;
  readonly validators: Validators;
  /** Length of the representation; undefined when it is produced while sending (no ranges, no Content-Length). */
  readonly length: number | undefined;
  /** False when Range must be ignored even with a known length (a content coding other than identity). */
  readonly rangeable: boolean;
  /** The representation's Content-Type (repeated in each multipart part). */
  readonly contentType: string;
  /** Content-Encoding of the whole representation, sent on 200 only; undefined or `identity` = none. */
  readonly contentEncoding?: string | undefined;
  /**
   * Fields every answer about this representation carries (ETag, Last-Modified, Vary,
   * Accept-Ranges, request id …); the plan copies them and never changes the caller's object.
   */
  readonly headers: Readonly<PlannedHeaders>;
  /** --max-ranges: more parts than this are served as 200 (planRanges). */
  readonly maxRanges: number;
  /** For tests: a fixed multipart boundary. */
  readonly boundary?: string;
}

export type DownloadPlan =
  /** 304: only the fields §15.4.5 asks for, no content. */
  | { readonly kind: 'not-modified'; readonly status: 304; readonly headers: PlannedHeaders; readonly by: 'if-none-match' | 'if-modified-since' }
  /** 412: the caller answers with its error (problem+json) carrying `headers`. */
  | { readonly kind: 'precondition-failed'; readonly status: 412; readonly headers: Record<string, string>; readonly by: 'if-match' | 'if-unmodified-since' | 'if-none-match' }
  /** 416: the caller answers with its error carrying `headers` (Content-Range: bytes *\/length). */
  | { readonly kind: 'range-not-satisfiable'; readonly status: 416; readonly headers: Record<string, string>; readonly length: number }
  | {
    readonly kind: 'send';
    readonly status: 200 | 206;
    readonly headers: PlannedHeaders;
    /**
     * The body in order; undefined when the representation is produced while sending
     * (`length` undefined). Planned for HEAD too (a Content-Digest covers it).
     */
    readonly parts: readonly PlannedPart[] | undefined;
    /** Ranges served (0 on 200). */
    readonly rangeCount: number;
    /** False for HEAD: send the header fields only. */
    readonly body: boolean;
  };

/** §15.4.5: a 304 carries those of these fields a 200 would have had (Ferry sends no Date of its own here, Node adds it). */
const NOT_MODIFIED_FIELDS = ['x-request-id', 'cache-control', 'content-location', 'etag', 'expires', 'vary'] as const;

/** Decides the whole answer; pure (no I/O, writes nothing). */
export function planDownload(o: PlanDownloadOptions): DownloadPlan {
  const h = o.requestHeaders;
  const etag = o.validators.etag;

  // §13.2.2 steps 1–4.
  const pre = evaluatePreconditions(o.method, conditionalHeadersFrom(h), o.validators);
  if (pre.kind === 'precondition-failed') {
    return { kind: 'precondition-failed', status: 412, by: pre.by, headers: etag === undefined ? {} : { etag } };
  }
  if (pre.kind === 'not-modified') {
    const headers: PlannedHeaders = {};
    for (const f of NOT_MODIFIED_FIELDS) {
      const v = o.headers[f];
      if (v !== undefined) headers[f] = v;
    }
    return { kind: 'not-modified', status: 304, by: pre.by, headers };
  }

  // §13.2.2 step 5 and §14.2: only GET has range semantics; If-Range false → ignore Range.
  const length = o.length;
  const rangeHeader = headerValue(h.range);
  let ranges: readonly ByteRange[] | undefined;
  if (o.method === 'GET' && rangeHeader !== undefined && o.rangeable && length !== undefined && evaluateIfRange(headerValue(h['if-range']), o.validators)) {
    const plan = planRanges(rangeHeader, length, { maxRanges: o.maxRanges });
    if (plan.kind === 'unsatisfiable') {
      const headers: Record<string, string> = { 'content-range': plan.contentRange, 'accept-ranges': 'bytes' };
      if (etag !== undefined) headers.etag = etag;
      return { kind: 'range-not-satisfiable', status: 416, headers, length };
    }
    if (plan.kind === 'partial') ranges = plan.ranges;
  }

  const headers: PlannedHeaders = { ...o.headers };
  const body = o.method === 'GET';
  if (ranges !== undefined && length !== undefined && ranges.length === 1) {
    const range = ranges[0]!;
    headers['content-type'] = o.contentType;
    headers['content-range'] = formatContentRange(range, length);
    headers['content-length'] = range.end - range.start + 1;
    return { kind: 'send', status: 206, headers, parts: [range], rangeCount: 1, body };
  }
  if (ranges !== undefined && length !== undefined) {
    const mp = planMultipartByteranges(ranges, length, o.contentType, o.boundary ?? generateBoundary());
    headers['content-type'] = mp.contentType;
    headers['content-length'] = mp.contentLength;
    const parts: PlannedPart[] = [];
    for (const part of mp.parts) parts.push(part.head, part.range);
    parts.push(mp.tail);
    return { kind: 'send', status: 206, headers, parts, rangeCount: ranges.length, body };
  }
  headers['content-type'] = o.contentType;
  if (o.contentEncoding !== undefined && o.contentEncoding !== 'identity') headers['content-encoding'] = o.contentEncoding;
  if (length === undefined) return { kind: 'send', status: 200, headers, parts: undefined, rangeCount: 0, body };
  headers['content-length'] = length;
  return { kind: 'send', status: 200, headers, parts: length > 0 ? [{ start: 0, end: length - 1 }] : [], rangeCount: 0, body };
}
