/**
 * Range requests (RFC 9110 §14): parsing the `Range` field, resolving it against the
 * representation's length, coalescing, the part limit, and `Content-Range`.
 *
 *   Range            = ranges-specifier
 *   ranges-specifier = range-unit "=" range-set
 *   range-set        = 1#range-spec
 *   range-spec       = int-range / suffix-range / other-range
 *   int-range        = first-pos "-" [ last-pos ]
 *   suffix-range     = "-" suffix-length
 */

/** Inclusive byte range, as in Content-Range (`start` = first-pos, `end` = last-pos). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export type RangeSpec =
  | { readonly kind: 'int'; readonly first: number; readonly last: number | undefined }
  | { readonly kind: 'suffix'; readonly length: number };

export type RangeHeader =
  | { readonly kind: 'absent' }
  /** Syntactically invalid: "A server MAY ignore or reject"; Ferry ignores (SPEC §2.1). */
  | { readonly kind: 'invalid' }
  /** A unit other than bytes: §14.1 "ignore a Range header field that contains a range unit it does not understand". */
  | { readonly kind: 'unknown-unit'; readonly unit: string }
  | { readonly kind: 'bytes'; readonly specs: readonly RangeSpec[] };

const INT_RANGE = /^(\d+)-(\d*)$/;
const SUFFIX_RANGE = /^-(\d+)$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses a `Range` field value. Numbers too large for a double become `Infinity`, which
 * compares correctly against any length ("huge numerals" are not an error: a first-pos past
 * the end is unsatisfiable, a last-pos past the end is clamped).
 */
export function parseRangeHeader(value: string | undefined): RangeHeader {
  if (value === undefined) return { kind: 'absent' };
  const eq = value.indexOf('=');
  if (eq <= 0) return { kind: 'invalid' };
  const unit = value.slice(0, eq);
  // The grammar has no whitespace around "=": `bytes = 0-1` is not a ranges-specifier.
  if (!TOKEN.test(unit)) return { kind: 'invalid' };
  // §14.1: "Range unit names are case-insensitive."
  if (unit.toLowerCase() !== 'bytes') return { kind: 'unknown-unit', unit };
  const specs: RangeSpec[] = [];
  for (const raw of value.slice(eq + 1).split(',')) {
    // §5.6.1: list elements are separated by OWS "," OWS, and a recipient MUST accept
    // (and ignore) empty elements.
    const element = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (element === '') continue;
    let m = INT_RANGE.exec(element);
    if (m !== null) {
      const first = Number(m[1]);
      const last = m[2] === '' ? undefined : Number(m[2]);
      // §14.1.1: "An int-range is invalid if the last-pos value is present and less than the first-pos."
      if (last !== undefined && last < first) return { kind: 'invalid' };
      specs.push({ kind: 'int', first, last });
      continue;
    }
    m = SUFFIX_RANGE.exec(element);
    if (m !== null) {
      specs.push({ kind: 'suffix', length: Number(m[1]) });
      continue;
    }
    // other-range, or garbage: not a byte range Ferry understands.
    return { kind: 'invalid' };
  }
  // range-set = 1#range-spec: at least one non-empty element.
  if (specs.length === 0) return { kind: 'invalid' };
  return { kind: 'bytes', specs };
}

/**
 * Resolves specs against a representation of `size` bytes (§14.1.2), in request order,
 * dropping the unsatisfiable ones:
 * - int-range: satisfiable when first-pos < length; last-pos is clamped to length − 1;
 * - suffix-range: satisfiable when suffix-length > 0; "If the selected representation is
 *   shorter than the specified suffix-length, the entire representation is used."
 */
export function resolveRanges(specs: readonly RangeSpec[], size: number): ByteRange[] {
  const out: ByteRange[] = [];
  for (const spec of specs) {
    if (spec.kind === 'int') {
      if (spec.first >= size) continue;
      out.push({ start: spec.first, end: Math.min(spec.last ?? size - 1, size - 1) });
    } else {
      if (spec.length === 0 || size === 0) continue;
      const length = Math.min(spec.length, size);
      out.push({ start: size - length, end: size - 1 });
    }
  }
  return out;
}

/**
 * Go's sumRangesSize guard, kept as a checkable invariant: the bytes a plan sends. After
 * coalescing, parts are disjoint, so this never exceeds the representation's length and a
 * Range header cannot make Ferry send more than the file (no amplification).
 */
export function sumRangesSize(ranges: readonly ByteRange[]): number {
  let sum = 0;
  for (const r of ranges) sum += r.end - r.start + 1;
  return sum;
}

/**
 * Sorts and merges overlapping or adjacent ranges. §14.6: "a server MAY coalesce any of the
 * ranges that overlap, or that are separated by a gap that is smaller than the overhead of
 * sending multiple parts, regardless of the order in which the corresponding range-spec
 * appeared"; §15.3.7.2: a client "cannot rely on receiving ... the same order that it
 * requested". Only overlap and adjacency are merged (gaps are never filled with bytes the
 * client did not ask for).
 */
export function coalesceRanges(ranges: readonly ByteRange[]): ByteRange[] {
  if (ranges.length <= 1) return [...ranges];
  const sorted = [...ranges].sort((a, b) => a.start - b.start || a.end - b.end);
  const out: ByteRange[] = [];
  let cur = sorted[0]!;
  for (let i = 1; i < sorted.length; i++) {
    const r = sorted[i]!;
    if (r.start <= cur.end + 1) {
      if (r.end > cur.end) cur = { start: cur.start, end: r.end };
    } else {
      out.push(cur);
      cur = r;
    }
  }
  out.push(cur);
  return out;
}

export interface PlanRangesOptions {
  /** Most parts in one multipart/byteranges answer (--max-ranges); more → the whole representation (200). */
  readonly maxRanges: number;
}

export type RangePlan =
  /** Send the whole representation with 200; `reason` says why a Range was not honoured. */
  | { readonly kind: 'full'; readonly reason: 'absent' | 'invalid' | 'unknown-unit' | 'too-many-ranges' | 'empty-representation' }
  /** 416 with `Content-Range: bytes *\/size`. */
  | { readonly kind: 'unsatisfiable'; readonly contentRange: string }
  /** 206: one range → single part; several → multipart/byteranges. Disjoint and ascending. */
  | { readonly kind: 'partial'; readonly ranges: readonly ByteRange[] };

/**
 * Decides what a GET with this `Range` gets, for a representation of `size` bytes.
 * The caller has already checked the method (§14.2: "GET is the only method for which range
 * handling is defined") and If-Range (§13.1.5); both mean "ignore Range" → don't call this.
 *
 * - absent, invalid or unknown unit → full (200), as SPEC §2.1 and §14.2 allow;
 * - no satisfiable range → 416 (§15.5.17);
 * - after coalescing more than `maxRanges` parts → full (§14.2: a server MAY ignore a Range
 *   with many small or overlapping ranges; nginx's max_ranges does the same);
 * - an empty representation with only suffix ranges: "the entire representation is used",
 *   which no Content-Range can express for zero bytes → full (200, empty body).
 */
export function planRanges(rangeValue: string | undefined, size: number, options: PlanRangesOptions): RangePlan {
  const header = parseRangeHeader(rangeValue);
  if (header.kind !== 'bytes') return { kind: 'full', reason: header.kind };
  const resolved = resolveRanges(header.specs, size);
  if (resolved.length === 0) {
    if (size === 0 && header.specs.some((s) => s.kind === 'suffix' && s.length > 0)) return { kind: 'full', reason: 'empty-representation' };
    return { kind: 'unsatisfiable', contentRange: formatUnsatisfiedRange(size) };
  }
  const ranges = coalesceRanges(resolved);
  if (ranges.length > options.maxRanges) return { kind: 'full', reason: 'too-many-ranges' };
  return { kind: 'partial', ranges };
}

/** `Content-Range: bytes first-last/complete-length` (§14.4). */
export function formatContentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/** `Content-Range: bytes *\/complete-length` for 416 (§14.4, §15.5.17). */
export function formatUnsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}
