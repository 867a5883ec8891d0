/**
 * A token bucket shared by all segments of one transfer (`--limit-rate`). Callers take the
 * bytes they just received and wait out any debt, which stops reading from the socket and so
 * slows the sender through TCP flow control. (src/limits/ holds the server's pacing; this one
 * is small and client-side, so it lives here.)
 */
import { sleep } from '../core/abort.ts';

export interface RateLimiter {
  /** Accounts for `bytes`; resolves when the transfer is back under the rate. */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
  /** Accounts for `bytes`; returns how long (ms) the caller should pause reading (0 = none). */
  reserve(bytes: number): number;
}

export interface TokenBucketOptions {
  readonly rateBytesPerSec: number;
  /** Default: 1/10 s of the rate, at least 16 KiB. */
  readonly burstBytes?: number;
  readonly now?: () => number;
}

export function createTokenBucket(options: TokenBucketOptions): RateLimiter {
  const rate = options.rateBytesPerSec;
  const burst = options.burstBytes ?? Math.max(16 * 1024, rate / 10);
  const now = options.now ?? (() => performance.now());
  let tokens = burst;
  let last = now();
  const reserve = (bytes: number): number => {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * rate);
    last = t;
    tokens -= bytes;
    return tokens >= 0 ? 0 : Math.ceil((-tokens / rate) * 1000);
  };
  return {
    reserve,
    async take(bytes, signal) {
      const waitMs = reserve(bytes);
      if (waitMs > 0) await sleep(waitMs, signal);
    },
  };
}

/** No limit. */
export const unlimited: RateLimiter = { take: () => Promise.resolve(), reserve: () => 0 };
