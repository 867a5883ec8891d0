/**
 * What to do after a failed attempt, and how long to wait. Pure.
 * Retried: timeouts, connection resets/refusals, 408, 429 and 5xx (the server may recover);
 * every other 4xx is final (retrying cannot change the answer).
 */

export type FailureKind = 'retry' | 'final';

/** RFC 9110 §15: 408 Request Timeout, 429 Too Many Requests (RFC 6585), 5xx server errors. */
export function classifyStatus(status: number): FailureKind {
  if (status === 408 || status === 429 || (status >= 500 && status <= 599)) return 'retry';
  return 'final';
}

/** Network error codes that a later attempt can get past (Node and undici names). */
const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EHOSTDOWN', 'EAI_AGAIN', 'EADDRNOTAVAIL',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_RETRY', 'UND_ERR_INFO',
  // The body ended before the bytes the response promised (a dropped connection): the one
  // FerryError code that is a network failure, retried like a reset.
  'FERRY_ERR_CLIENT_SHORT_BODY',
  'HPE_INVALID_CHUNK_SIZE', 'HPE_INVALID_CONSTANT', 'HPE_UNEXPECTED_CONTENT_LENGTH',
]);

/** True when a thrown network error is worth another attempt. */
export function isRetryableNetworkError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (typeof e !== 'object') break;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": half the step fixed, half random, so retries from
 * many segments spread out but never collapse to zero. `failures` counts consecutive failed
 * attempts without progress (1 = first failure). A server's `Retry-After` is a floor.
 * @param random a number in [0, 1), injectable for tests.
 */
export function backoffDelayMs(failures: number, options: BackoffOptions, retryAfterMs: number | undefined, random: number): number {
  const step = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, failures - 1));
  const jittered = step / 2 + (step / 2) * random;
  return Math.round(retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs));
}
