/**
 * Content-coding negotiation (RFC 9110 §12.5.3 Accept-Encoding, §12.4.2 quality values) and
 * which media types are worth compressing.
 *
 *   Accept-Encoding = #( codings [ weight ] )
 *   codings         = content-coding / "identity" / "*"
 *   weight          = OWS ";" OWS "q=" qvalue
 *   qvalue          = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
 */

export type ContentCoding = 'gzip' | 'br' | 'zstd' | 'identity';

export interface AcceptEncodingEntry {
  /** Lower-cased coding, `x-gzip` folded into `gzip` (§8.4.1.3), or `*`. */
  readonly coding: string;
  /** 0–1. */
  readonly q: number;
}

const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parses the field; malformed members are skipped. Empty field → empty list. */
export function parseAcceptEncoding(value: string): AcceptEncodingEntry[] {
  const out: AcceptEncodingEntry[] = [];
  for (const member of value.split(',')) {
    const [rawCoding, ...params] = member.split(';');
    const coding = (rawCoding ?? '').trim().toLowerCase();
    if (coding === '') continue;
    if (!TOKEN.test(coding)) continue;
    let q = 1;
    let valid = true;
    for (const param of params) {
      const m = /^\s*([A-Za-z]+)\s*=\s*(\S*)\s*$/.exec(param);
      if (m === null) { valid = false; break; }
      if (m[1]!.toLowerCase() !== 'q') continue; // other parameters: none are defined; ignore
      if (!QVALUE.test(m[2]!)) { valid = false; break; }
      q = Number(m[2]);
    }
    if (!valid) continue;
    out.push({ coding: coding === 'x-gzip' ? 'gzip' : coding, q });
  }
  return out;
}

/**
 * Chooses the content coding for a response.
 *
 * @param header the Accept-Encoding value, or undefined when absent.
 * @param available codings the server can produce for this resource, in the server's order
 *   of preference (ties in q go to the earlier one). `identity` need not be listed.
 * @returns the coding to use, or undefined when not even identity is acceptable (the caller
 *   may answer 406 or, as §12.5.3 permits, "disregard the header field" and send identity).
 *
 * Rules (§12.5.3):
 * - no field: "any content coding is considered acceptable"; Ferry then sends identity, the
 *   safest reading for clients that did not ask (curl, wget, download managers);
 * - an empty field: "the user agent does not want any content coding" → identity;
 * - a coding's weight is its own entry's q, else the `*` entry's q, else 0 (not acceptable);
 * - identity is acceptable "unless specifically excluded ... by "identity;q=0" or "*;q=0"
 *   without a more specific entry for "identity""; without an explicit entry it ranks below
 *   every acceptable coding (the user agent listed codings because it wants them).
 */
export function negotiateEncoding(header: string | undefined, available: readonly ContentCoding[]): ContentCoding | undefined {
  if (header === undefined || header.trim() === '') return 'identity';
  const entries = parseAcceptEncoding(header);
  const qOf = (coding: string): number | undefined => {
    let q: number | undefined;
    for (const e of entries) if (e.coding === coding) q = Math.max(q ?? 0, e.q);
    return q;
  };
  const star = qOf('*');
  let best: ContentCoding | undefined;
  let bestQ = 0;
  for (const coding of available) {
    if (coding === 'identity') continue;
    const q = qOf(coding) ?? star ?? 0;
    if (q > bestQ) { best = coding; bestQ = q; }
  }
  const identityExplicit = qOf('identity');
  const identityAcceptable = identityExplicit !== undefined ? identityExplicit > 0 : star !== 0;
  if (best !== undefined) {
    // An explicit identity entry that outranks the best coding wins.
    if (identityExplicit !== undefined && identityExplicit > bestQ) return 'identity';
    return best;
  }
  return identityAcceptable ? 'identity' : undefined;
}

/** Structured-syntax suffixes and types that are text underneath (RFC 6839). */
const COMPRESSIBLE_EXACT = new Set([
  'application/json', 'application/javascript', 'application/ecmascript', 'application/x-javascript',
  'application/xml', 'application/xhtml+xml', 'application/rss+xml', 'application/atom+xml',
  'application/wasm', 'application/x-ndjson', 'application/ndjson', 'application/yaml', 'application/x-yaml',
  'application/toml', 'application/graphql', 'application/x-sh', 'application/x-csh', 'application/rtf',
  'application/postscript', 'application/x-httpd-php', 'application/sql', 'application/x-tex', 'application/x-latex',
  'application/vnd.ms-fontobject', 'application/x-font-ttf', 'application/x-font-opentype', 'application/manifest+json',
  'application/geo+json', 'application/x-subrip', 'application/dicom', 'application/x-ipynb+json',
  'image/svg+xml', 'image/bmp', 'image/x-ms-bmp', 'image/vnd.microsoft.icon', 'image/x-icon',
  'font/ttf', 'font/otf', 'font/collection',
]);

/**
 * True for media types worth compressing on the fly: text, JSON, JavaScript, XML, SVG, wasm
 * and friends. Never for media (image/video/audio beyond the few uncompressed formats above),
 * archives or already-compressed formats (zip, gzip, pdf, woff2, ...).
 */
export function isCompressibleType(contentType: string): boolean {
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (type.startsWith('text/')) return type !== 'text/event-stream';
  if (COMPRESSIBLE_EXACT.has(type)) return true;
  return type.startsWith('application/') && (type.endsWith('+json') || type.endsWith('+xml'));
}
