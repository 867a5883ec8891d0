/**
 * Entry names. Every name Ferry writes is relative, `/`-separated UTF-8 with no empty, `.` or
 * `..` segment and no backslash (APPNOTE 4.4.17.1: "MUST NOT contain a drive or device letter, or
 * a leading slash. All slashes MUST be forward slashes"), so no extractor can be led outside its
 * target folder ("zip slip"), also on Windows where `\` is a separator.
 */
import { FerryError } from '../core/errors.ts';

/** The longest name a ZIP header can carry (16-bit length field). */
export const MAX_ENTRY_NAME_BYTES = 0xffff;

/**
 * Makes one path segment safe to write: a backslash (legal in a Linux file name, a separator on
 * Windows) becomes `_`; NUL never occurs (the path jail refuses it). Empty, `.` and `..` are
 * refused: they cannot come from a real directory listing.
 */
export function sanitizeSegment(segment: string): string {
  if (segment === '' || segment === '.' || segment === '..' || segment.includes('/') || segment.includes('\0')) {
    throw new FerryError('FERRY_ERR_ZIP_SELECTION_INVALID', 'A name in the selection cannot be written to a zip');
  }
  return segment.includes('\\') ? segment.replaceAll('\\', '_') : segment;
}

/** `a/b/c` from segments, each sanitized. */
export function joinEntryName(segments: readonly string[]): string {
  return segments.map(sanitizeSegment).join('/');
}

/** `report.pdf` → `report (2).pdf`; folders and dot-less names get the suffix at the end. */
export function numberedName(name: string, n: number, type: 'file' | 'directory'): string {
  const slash = name.lastIndexOf('/');
  const dir = name.slice(0, slash + 1);
  const base = name.slice(slash + 1);
  const dot = type === 'file' ? base.lastIndexOf('.') : -1;
  // A leading dot (".profile") is not an extension.
  if (dot > 0) return `${dir}${base.slice(0, dot)} (${n})${base.slice(dot)}`;
  return `${dir}${base} (${n})`;
}

/**
 * Hands out entry names without collisions, deterministically (first come keeps its name).
 * Top-level names of a selection are compared case-insensitively (after NFC), because the two
 * `Report.pdf` and `report.pdf` picked from different folders would overwrite each other when
 * extracted on Windows or macOS; names inside one folder keep the folder's own spelling.
 */
export class EntryNameRegistry {
  readonly #exact = new Set<string>();
  readonly #folded = new Set<string>();

  /** Reserves `name` (or `name (2)`, `name (3)`, …) and returns the reserved name. */
  claim(name: string, type: 'file' | 'directory', options: { caseInsensitive?: boolean } = {}): string {
    const fold = options.caseInsensitive === true;
    let candidate = name;
    for (let n = 2; this.#taken(candidate, fold); n++) candidate = numberedName(name, n, type);
    this.#exact.add(candidate);
    if (fold) this.#folded.add(foldName(candidate));
    return candidate;
  }

  #taken(name: string, fold: boolean): boolean {
    if (this.#exact.has(name)) return true;
    return fold && this.#folded.has(foldName(name));
  }
}

function foldName(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

/**
 * The download's file name: the caller's `?name=` or a fallback, reduced to one safe segment and
 * ending in `.zip`. Control characters and separators become `_`.
 */
export function toArchiveFileName(requested: string | undefined, fallback: string): string {
  const raw = (requested ?? '').trim() === '' ? fallback : (requested ?? '');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
  let name = raw.replace(/[\u0000-\u001f\u007f/\\]/g, '_').trim();
  if (name === '' || name === '.' || name === '..') name = 'archive';
  if (!name.toLowerCase().endsWith('.zip')) name += '.zip';
  // Most file systems allow 255 bytes per name; cut on code points, never inside a surrogate pair.
  if (Buffer.byteLength(name) > 255) name = `${Array.from(name.slice(0, -4)).slice(0, 60).join('')}.zip`;
  return name;
}
