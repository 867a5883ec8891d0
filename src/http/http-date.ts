/**
 * HTTP-date (RFC 9110 §5.6.7).
 *
 *   HTTP-date    = IMF-fixdate / obs-date
 *   IMF-fixdate  = day-name "," SP date1 SP time-of-day SP GMT     ; Sun, 06 Nov 1994 08:49:37 GMT
 *   obs-date     = rfc850-date / asctime-date
 *   rfc850-date  = day-name-l "," SP date2 SP time-of-day SP GMT   ; Sunday, 06-Nov-94 08:49:37 GMT
 *   asctime-date = day-name SP date3 SP time-of-day SP year        ; Sun Nov  6 08:49:37 1994
 *
 * "A recipient that parses a timestamp value in an HTTP field MUST accept all three HTTP-date
 * formats." A value that matches none of them is not a date (callers then ignore the field).
 */

const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
const DAY_NAMES = new Set(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']);
const DAY_NAMES_L = new Set(['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday']);

// The grammar is case-sensitive (%s"Jan", %s"GMT"): no `i` flag.
const IMF_FIXDATE = /^([A-Za-z]{3}), (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^([A-Za-z]{6,9}), (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
// date3 = month SP ( 2DIGIT / ( SP DIGIT ) )
const ASCTIME_DATE = /^([A-Za-z]{3}) ([A-Za-z]{3}) ((?:\d{2})|(?: \d)) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Parses an HTTP-date in any of the three formats into milliseconds since the epoch
 * (always a whole second), or undefined when the value is not a valid HTTP-date.
 * Surrounding whitespace (OWS around a field value) is tolerated; anything else is not:
 * a list of dates, a wrong day name, `Feb 30` or `25:00:00` are all invalid.
 *
 * @param nowMs the recipient's clock, used only for the two-digit years of rfc850-date.
 */
export function parseHttpDate(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let m = IMF_FIXDATE.exec(text);
  if (m !== null) {
    if (!DAY_NAMES.has(m[1]!)) return undefined;
    return build(Number(m[4]), m[3]!, Number(m[2]), m[5]!, m[6]!, m[7]!);
  }
  m = RFC850_DATE.exec(text);
  if (m !== null) {
    if (!DAY_NAMES_L.has(m[1]!)) return undefined;
    return build(fullYearFromTwoDigits(Number(m[4]), nowMs), m[3]!, Number(m[2]), m[5]!, m[6]!, m[7]!);
  }
  m = ASCTIME_DATE.exec(text);
  if (m !== null) {
    if (!DAY_NAMES.has(m[1]!)) return undefined;
    return build(Number(m[7]), m[2]!, Number(m[3]!.trim()), m[4]!, m[5]!, m[6]!);
  }
  return undefined;
}

/**
 * RFC 9110 §5.6.7: "Recipients of a timestamp value in rfc850-date format, which uses a
 * two-digit year, MUST interpret a timestamp that appears to be more than 50 years in the
 * future as representing the most recent year in the past that had the same last two digits."
 */
function fullYearFromTwoDigits(yy: number, nowMs: number): number {
  const nowYear = new Date(nowMs).getUTCFullYear();
  let year = Math.floor(nowYear / 100) * 100 + yy;
  if (year > nowYear + 50) year -= 100;
  else if (year < nowYear - 50) year += 100;
  return year;
}

function build(year: number, monthName: string, day: number, hh: string, mm: string, ss: string): number | undefined {
  const month = MONTHS[monthName];
  if (month === undefined) return undefined;
  const hour = Number(hh);
  const minute = Number(mm);
  // time-of-day: second = 2DIGIT, "60" allowed for a leap second (§5.6.7).
  const second = Number(ss);
  if (hour > 23 || minute > 59 || second > 60 || day < 1) return undefined;
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  date.setUTCHours(hour, minute, Math.min(second, 59), 0);
  // Reject days that roll over into the next month (Feb 30, Apr 31).
  if (date.getUTCDate() !== day || date.getUTCMonth() !== month) return undefined;
  return date.getTime();
}

/** IMF-fixdate for a time in milliseconds (truncated to the second), e.g. for Last-Modified. */
export function formatHttpDate(ms: number): string {
  // ECMAScript's toUTCString() is exactly IMF-fixdate for years 0000–9999.
  return new Date(toHttpDateSeconds(ms)).toUTCString();
}

/** Truncates a time to the whole second an HTTP-date can express. */
export function toHttpDateSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
