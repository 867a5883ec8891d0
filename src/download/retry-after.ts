/**
 * RFC 9110 §10.2.3 `Retry-After = HTTP-date / delay-seconds`, as a delay in milliseconds.
 */

/**
 * @param nowMs the client's clock, used for the HTTP-date form.
 * @returns the delay in ms (≥ 0), or undefined when the value is missing or malformed.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : undefined;
  }
  // HTTP-date (IMF-fixdate, or the obsolete forms Date.parse also accepts, §5.6.7).
  if (!/^[A-Za-z]{3},? /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
