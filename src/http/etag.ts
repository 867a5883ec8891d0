/**
 * Entity tags (RFC 9110 §8.8.3).
 *
 *   ETag       = entity-tag
 *   entity-tag = [ weak ] opaque-tag
 *   weak       = %s"W/"
 *   opaque-tag = DQUOTE *etagc DQUOTE
 *   etagc      = %x21 / %x23-7E / obs-text
 *
 * Note that a comma is a valid etagc, so a list of tags cannot be split on commas naively.
 */

export interface EntityTag {
  readonly weak: boolean;
  /** The opaque-tag including its double quotes, e.g. `"abc"`. */
  readonly opaque: string;
}

/** `*` (any current representation) or a list of tags; invalid members are skipped. */
export type EntityTagList = '*' | readonly EntityTag[];

/** What a strong validator is derived from (storage FileStat satisfies this). */
export interface EtagSource {
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
  /** A validator the storage backend guarantees (an object store's ETag); preferred when set. */
  readonly etag?: string;
}

/** Characters an opaque-tag may carry that are safe to copy from a backend validator. */
const BACKEND_TAG_UNSAFE = /[^\x21\x23-\x7e]/g;

/**
 * A strong ETag for a stored file: changes whenever the bytes can have changed (a write moves
 * mtime in nanoseconds or the size; a replace-by-rename changes the inode). When the backend
 * guarantees a validator of its own (`etag`, an object store's ETag), the tag is built from it
 * and the size instead, since an object store has no inode and a one-second Last-Modified. `coding` names a
 * content coding (`gzip`, `br`, `zstd`): RFC 9110 §8.8.3 requires distinct strong tags for
 * representations that differ, and a gzip body is a different representation.
 */
export function generateEtag(source: EtagSource, coding?: string): string {
  const base = source.etag === undefined
    ? `${source.ino.toString(36)}-${source.size.toString(36)}-${source.mtimeNs.toString(36)}`
    // An object store's ETag changes with every write of the object (S3: the MD5 of a
    // single-part body, or of the part MD5s plus `-N`); the size is folded in so two stores
    // that reuse tags differently still never validate a different length.
    : `o${source.etag.replace(BACKEND_TAG_UNSAFE, '')}-${source.size.toString(36)}`;
  return coding === undefined || coding === 'identity' ? `"${base}"` : `"${base}-${coding}"`;
}

function isEtagc(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

/** Parses one entity-tag (surrounding whitespace allowed); undefined when invalid. */
export function parseEntityTag(value: string): EntityTag | undefined {
  const text = value.trim();
  const weak = text.startsWith('W/');
  const opaque = weak ? text.slice(2) : text;
  if (opaque.length < 2 || opaque[0] !== '"' || opaque[opaque.length - 1] !== '"') return undefined;
  for (let i = 1; i < opaque.length - 1; i++) if (!isEtagc(opaque.charCodeAt(i))) return undefined;
  return { weak, opaque };
}

/**
 * Parses `If-Match` / `If-None-Match`: `"*" / #entity-tag` (RFC 9110 §13.1.1, §13.1.2).
 * Empty list elements are accepted (§5.6.1); a malformed member is skipped, so a field with
 * no valid tag matches nothing.
 */
export function parseEntityTagList(value: string): EntityTagList {
  if (value.trim() === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    // Skip OWS and empty list elements.
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++;
    if (i >= n) break;
    const start = i;
    let weak = false;
    if (value.startsWith('W/', i)) { weak = true; i += 2; }
    let valid = value[i] === '"';
    if (valid) {
      i++;
      while (i < n && value[i] !== '"') {
        if (!isEtagc(value.charCodeAt(i))) valid = false;
        i++;
      }
      if (i >= n) valid = false; // no closing quote
      else i++; // closing quote
      // Only OWS may follow before the next comma.
      while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
      if (i < n && value[i] !== ',') valid = false;
    }
    if (valid) {
      const opaque = value.slice(start + (weak ? 2 : 0), i).trimEnd();
      tags.push({ weak, opaque });
    } else {
      // Skip the rest of this malformed member (up to a comma outside quotes).
      let quoted = false;
      while (i < n && (quoted || value[i] !== ',')) {
        if (value[i] === '"') quoted = !quoted;
        i++;
      }
    }
  }
  return tags;
}

/** Strong comparison (§8.8.3.2): both strong and identical opaque-tags. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison (§8.8.3.2): opaque-tags match, either or both may be weak. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}
