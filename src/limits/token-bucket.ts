/**
 * A token bucket in its GCRA form (the "virtual scheduling" algorithm of ITU-T I.371, also
 * what redis-cell implements): one number, the theoretical arrival time (TAT), instead of a
 * token count and a refill timer. Reserving `n` tokens moves the TAT forward by `n / rate`
 * and tells the caller how long to wait before using them; the bucket may go into debt, so
 * the waits of several callers queue up in arrival order (FIFO, hence fair by bytes when the
 * callers take equal slices). Nothing here does I/O or keeps a timer.
 */

/** Rate and burst of one bucket. */
export interface BucketSpec {
  /** Sustained rate, tokens (bytes or requests) per second; > 0. */
  readonly ratePerSec: number;
  /** Tokens that may be taken at once after an idle period (the bucket's size); > 0. */
  readonly burst: number;
}

export class TokenBucket {
  #spec: BucketSpec;
  /** Time (ms, monotonic clock) at which the bucket is full again. */
  #tatMs: number;

  /** A full bucket. */
  constructor(spec: BucketSpec, nowMs: number) {
    if (!(spec.ratePerSec > 0) || !(spec.burst > 0)) throw new RangeError('bucket rate and burst must be > 0');
    this.#spec = spec;
    this.#tatMs = nowMs;
  }

  get spec(): BucketSpec {
    return this.#spec;
  }

  /** Changes rate or burst, keeping the debt (expressed in time) as it is. */
  setSpec(spec: BucketSpec): void {
    if (!(spec.ratePerSec > 0) || !(spec.burst > 0)) throw new RangeError('bucket rate and burst must be > 0');
    this.#spec = spec;
  }

  /**
   * Takes `amount` tokens now (possibly into debt) and returns how many milliseconds the
   * caller must wait before using them: 0 while the bucket holds enough.
   */
  reserve(amount: number, nowMs: number): number {
    const tat = Math.max(this.#tatMs, nowMs) + (amount * 1000) / this.#spec.ratePerSec;
    this.#tatMs = tat;
    const tauMs = (this.#spec.burst * 1000) / this.#spec.ratePerSec;
    const waitMs = tat - tauMs - nowMs;
    // Below a microsecond is floating-point noise ((now + x) - x - now), not a wait.
    return waitMs > 1e-3 ? waitMs : 0;
  }

  /** Gives back tokens that were reserved but not used (a transfer aborted while waiting). */
  refund(amount: number, nowMs: number): void {
    this.#tatMs = Math.max(nowMs, this.#tatMs - (amount * 1000) / this.#spec.ratePerSec);
  }

  /** Tokens available right now (negative while in debt). */
  available(nowMs: number): number {
    const debtMs = Math.max(0, this.#tatMs - nowMs);
    return this.#spec.burst - (debtMs * this.#spec.ratePerSec) / 1000;
  }

  /** True when the bucket is full: it can be forgotten without changing any decision. */
  isIdle(nowMs: number): boolean {
    return this.#tatMs <= nowMs;
  }
}
