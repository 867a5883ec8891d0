/**
 * A small RFC 9110 §14.4 `Content-Range` parser for the client. (src/http/ has the server's
 * helpers; this one lives here so the downloader does not wait for them — it is pure and
 * could move to http/ later.)
 *
 *   Content-Range     = range-unit SP ( range-resp / unsatisfied-range )
 *   range-resp        = incl-range "/" ( complete-length / "*" )
 *   incl-range        = first-pos "-" last-pos
 *   unsatisfied-range = "*" "/" complete-length
 */

export type ContentRange =
  | { readonly kind: 'range'; readonly first: number; readonly last: number; readonly completeLength: number | undefined }
  | { readonly kind: 'unsatisfied'; readonly completeLength: number };

const RANGE_RESP = /^bytes[ \t]+(\d+)-(\d+)\/(\d+|\*)$/i;
const UNSATISFIED = /^bytes[ \t]+\*\/(\d+)$/i;

/** Parses a `Content-Range` value; undefined when it is missing, malformed or not in bytes. */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const m = RANGE_RESP.exec(text);
  if (m !== null) {
    const first = toSafeInt(m[1]);
    const last = toSafeInt(m[2]);
    const completeLength = m[3] === '*' ? undefined : toSafeInt(m[3]);
    if (first === undefined || last === undefined || (m[3] !== '*' && completeLength === undefined)) return undefined;
    // §14.4: "A Content-Range field value is invalid if it contains a range-resp that has a
    // last-pos value less than its first-pos value, or a complete-length value less than or
    // equal to its last-pos value."
    if (last < first) return undefined;
    if (completeLength !== undefined && completeLength <= last) return undefined;
    return { kind: 'range', first, last, completeLength };
  }
  const u = UNSATISFIED.exec(text);
  if (u !== null) {
    const completeLength = toSafeInt(u[1]);
    return completeLength === undefined ? undefined : { kind: 'unsatisfied', completeLength };
  }
  return undefined;
}

function toSafeInt(digits: string | undefined): number | undefined {
  if (digits === undefined) return undefined;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}
