/**
 * The path jail's first half: turns the percent-encoded `{path}` of a URL into validated,
 * decoded segments, with no I/O. `..`, `.`, encoded separators (`%2F`, `%5C`), backslashes, NUL
 * and malformed escapes are refused with 400. Symlink resolution is the storage backend's half.
 *
 * Size caps (400 FERRY_ERR_PATH_TOO_LONG, before any I/O and before a request body is read):
 * - at most {@link MAX_PATH_SEGMENTS} segments: every path Ferry touches is resolved, walked or
 *   created segment by segment, so a path's depth multiplies the work of every request on it
 *   (a 1,900-level PUT kept a core busy for minutes); 128 is far beyond real trees (deep
 *   `node_modules` or Java package trees stay under ~40) while keeping that work small;
 * - each segment at most {@link MAX_SEGMENT_BYTES} bytes of UTF-8 (Linux NAME_MAX; longer names
 *   cannot exist on the common file systems, so they used to fail late with ENAMETOOLONG);
 * - the whole relative path at most {@link MAX_PATH_BYTES} bytes of UTF-8 (Linux PATH_MAX).
 */
import { FerryError } from './errors.ts';

export interface SafePath {
  /** Decoded segments, never `.`/`..`/empty; `[]` is the root. */
  readonly segments: readonly string[];
  /** Segments joined with `/`; `''` for the root. */
  readonly relative: string;
  /** True when any segment starts with `.` (a hidden name). */
  readonly hidden: boolean;
}

/** Most segments in a path relative to the root. */
export const MAX_PATH_SEGMENTS = 128;
/** Most UTF-8 bytes in one segment (NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;
/** Most UTF-8 bytes in a whole relative path, segments joined with `/` (PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

const ENCODED_SEPARATOR = /%(2f|5c)/i;
/** With the `u` flag, surrogate pairs are one code point: this matches only unpaired halves. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * @param encoded the path as it appears in the URL, without the route prefix and query,
 *   e.g. `docs/%E5%AD%A3%E5%BA%A6.pdf`. A leading or trailing `/` is allowed.
 */
export function parseSafePath(encoded: string): SafePath {
  if (encoded.includes('\\')) throw invalid('backslash in path');
  if (ENCODED_SEPARATOR.test(encoded)) throw invalid('encoded path separator');
  const trimmed = encoded.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return { segments: [], relative: '', hidden: false };
  const raws = trimmed.split('/');
  // Counted before anything is decoded: a refused path costs one split.
  checkSegmentCount(raws.length);
  const segments: string[] = [];
  let hidden = false;
  for (const raw of raws) {
    if (raw === '') throw invalid('empty path segment');
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw invalid('malformed percent-encoding');
    }
    if (seg === '.' || seg === '..') throw invalid('dot-segment in path');
    if (seg.includes('\0')) throw invalid('NUL in path');
    // A lone surrogate has no UTF-8 form: a disk would store replacement bytes, an object store another key.
    if (LONE_SURROGATE.test(seg)) throw invalid('path is not valid Unicode (lone surrogate)');
    if (seg.includes('/') || seg.includes('\\')) throw invalid('separator in path segment');
    if (seg.startsWith('.')) hidden = true;
    segments.push(seg);
  }
  return withLengthChecked(segments, hidden);
}

/** Validates an already-decoded relative path (from JSON bodies, tus metadata, zip selections). */
export function parseDecodedPath(decoded: string): SafePath {
  if (decoded.includes('\0')) throw invalid('NUL in path');
  if (LONE_SURROGATE.test(decoded)) throw invalid('path is not valid Unicode (lone surrogate)');
  if (decoded.includes('\\')) throw invalid('backslash in path');
  const trimmed = decoded.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return { segments: [], relative: '', hidden: false };
  const segments = trimmed.split('/');
  checkSegmentCount(segments.length);
  let hidden = false;
  for (const seg of segments) {
    if (seg === '') throw invalid('empty path segment');
    if (seg === '.' || seg === '..') throw invalid('dot-segment in path');
    if (seg.startsWith('.')) hidden = true;
  }
  return withLengthChecked(segments, hidden);
}

/**
 * Why a relative path (`/`-separated, already valid) exceeds the caps, or undefined when it
 * fits. For paths that do not come from a request (a folder walk below a zip root): a tree
 * made on disk can be deeper than any URL Ferry accepts.
 */
export function pathLimitExceeded(relative: string): string | undefined {
  if (relative === '') return undefined;
  let count = 1;
  for (let i = relative.indexOf('/'); i !== -1; i = relative.indexOf('/', i + 1)) count++;
  if (count > MAX_PATH_SEGMENTS) return segmentsDetail();
  if (Buffer.byteLength(relative, 'utf8') > MAX_PATH_BYTES) return bytesDetail();
  for (const seg of relative.split('/')) if (Buffer.byteLength(seg, 'utf8') > MAX_SEGMENT_BYTES) return segmentBytesDetail();
  return undefined;
}

function checkSegmentCount(n: number): void {
  if (n > MAX_PATH_SEGMENTS) throw tooLong(segmentsDetail(), MAX_PATH_SEGMENTS, 'segments');
}

function withLengthChecked(segments: string[], hidden: boolean): SafePath {
  const relative = segments.join('/');
  if (Buffer.byteLength(relative, 'utf8') > MAX_PATH_BYTES) throw tooLong(bytesDetail(), MAX_PATH_BYTES, 'path-bytes');
  for (const seg of segments) {
    if (Buffer.byteLength(seg, 'utf8') > MAX_SEGMENT_BYTES) throw tooLong(segmentBytesDetail(), MAX_SEGMENT_BYTES, 'segment-bytes');
  }
  return { segments, relative, hidden };
}

function segmentsDetail(): string {
  return `path has more than ${MAX_PATH_SEGMENTS} segments (folder levels)`;
}
function bytesDetail(): string {
  return `path is longer than ${MAX_PATH_BYTES} bytes (UTF-8)`;
}
function segmentBytesDetail(): string {
  return `a path segment (file or folder name) is longer than ${MAX_SEGMENT_BYTES} bytes (UTF-8)`;
}

function tooLong(detail: string, limit: number, what: 'segments' | 'path-bytes' | 'segment-bytes'): FerryError {
  return new FerryError('FERRY_ERR_PATH_TOO_LONG', detail, { extra: { limit, limitOf: what } });
}

function invalid(detail: string): FerryError {
  return new FerryError('FERRY_ERR_PATH_INVALID', detail);
}
