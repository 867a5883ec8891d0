/**
 * `multipart/byteranges` framing (RFC 9110 §14.6, RFC 2046 §5.1.1), planned up front so the
 * exact Content-Length is known before the first byte is sent:
 *
 *   --BOUNDARY CRLF
 *   Content-Type: text/plain CRLF
 *   Content-Range: bytes 0-50/1270 CRLF
 *   CRLF
 *   <part bytes> CRLF
 *   --BOUNDARY CRLF
 *   ...
 *   <part bytes> CRLF
 *   --BOUNDARY-- CRLF
 *
 * (The CRLF before each delimiter belongs to the delimiter, RFC 2046 §5.1.1.)
 */
import { randomBytes } from 'node:crypto';
import { formatContentRange, type ByteRange } from './range.ts';

export interface MultipartPart {
  /** Delimiter and part header fields, ready to write before the part's bytes (latin1). */
  readonly head: string;
  readonly range: ByteRange;
}

export interface MultipartPlan {
  readonly boundary: string;
  /** Value of the response's Content-Type. */
  readonly contentType: string;
  /** Exact body length: heads + part bytes + tail. */
  readonly contentLength: number;
  readonly parts: readonly MultipartPart[];
  /** Closing delimiter, written after the last part's bytes. */
  readonly tail: string;
}

/**
 * A random boundary: 32 hex characters (bchars, well under 70), unpredictable so it cannot
 * occur in the content by design of an attacker.
 */
export function generateBoundary(): string {
  return randomBytes(16).toString('hex');
}

/**
 * @param ranges disjoint ranges (from planRanges), at least two.
 * @param partContentType the representation's Content-Type, repeated in each part (§14.6).
 */
export function planMultipartByteranges(ranges: readonly ByteRange[], size: number, partContentType: string, boundary: string = generateBoundary()): MultipartPlan {
  const parts: MultipartPart[] = [];
  let contentLength = 0;
  ranges.forEach((range, i) => {
    const head = `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${partContentType}\r\nContent-Range: ${formatContentRange(range, size)}\r\n\r\n`;
    parts.push({ head, range });
    contentLength += Buffer.byteLength(head, 'latin1') + (range.end - range.start + 1);
  });
  const tail = `\r\n--${boundary}--\r\n`;
  contentLength += Buffer.byteLength(tail, 'latin1');
  return { boundary, contentType: `multipart/byteranges; boundary=${boundary}`, contentLength, parts, tail };
}
