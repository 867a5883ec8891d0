/**
 * The path jail's first half (SPEC §2): turns the percent-encoded `{path}` of a URL into
 * validated, decoded segments, with no I/O. `..`, `.`, encoded separators (`%2F`, `%5C`),
 * backslashes, NUL and malformed escapes are refused with 400. Symlink resolution is the
 * storage backend's half.
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

const ENCODED_SEPARATOR = /%(2f|5c)/i;

/**
 * @param encoded the path as it appears in the URL, without the route prefix and query,
 *   e.g. `docs/%E5%AD%A3%E5%BA%A6.pdf`. A leading or trailing `/` is allowed.
 */
export function parseSafePath(encoded: string): SafePath {
  if (encoded.includes('\\')) throw invalid('backslash in path');
  if (ENCODED_SEPARATOR.test(encoded)) throw invalid('encoded path separator');
  const trimmed = encoded.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return { segments: [], relative: '', hidden: false };
  const segments: string[] = [];
  let hidden = false;
  for (const raw of trimmed.split('/')) {
    if (raw === '') throw invalid('empty path segment');
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw invalid('malformed percent-encoding');
    }
    if (seg === '.' || seg === '..') throw invalid('dot-segment in path');
    if (seg.includes('\0')) throw invalid('NUL in path');
    if (seg.includes('/') || seg.includes('\\')) throw invalid('separator in path segment');
    if (seg.startsWith('.')) hidden = true;
    segments.push(seg);
  }
  return { segments, relative: segments.join('/'), hidden };
}

/** Validates an already-decoded relative path (from JSON bodies, tus metadata, zip selections). */
export function parseDecodedPath(decoded: string): SafePath {
  if (decoded.includes('\0')) throw invalid('NUL in path');
  if (decoded.includes('\\')) throw invalid('backslash in path');
  const trimmed = decoded.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return { segments: [], relative: '', hidden: false };
  const segments = trimmed.split('/');
  let hidden = false;
  for (const seg of segments) {
    if (seg === '') throw invalid('empty path segment');
    if (seg === '.' || seg === '..') throw invalid('dot-segment in path');
    if (seg.startsWith('.')) hidden = true;
  }
  return { segments, relative: segments.join('/'), hidden };
}

function invalid(detail: string): FerryError {
  return new FerryError('FERRY_ERR_PATH_INVALID', detail);
}
