/**
 * Where shared limit state lives: the buckets and counters that several transfers (or, later,
 * several Ferry instances) share. In-process by default; a Redis implementation can keep the
 * same contract (GCRA reservations are one Lua script, counters INCR/DECR with a TTL), which
 * is why every method may answer with a promise. Per-transfer buckets never go through the
 * store: they belong to one stream.
 */
import { TokenBucket, type BucketSpec } from './token-bucket.ts';

/** One counter to take a slot from: at most `limit` held at once under `key`. */
export interface Slot {
  readonly key: string;
  readonly limit: number;
}

export interface LimitStore {
  /** Reserves `amount` tokens from bucket `key` (created full); resolves to the wait in ms. */
  reserve(key: string, amount: number, spec: BucketSpec): number | Promise<number>;
  /** Returns reserved tokens that were not used. */
  refund(key: string, amount: number, spec: BucketSpec): void | Promise<void>;
  /**
   * Takes one slot from every counter, all or none. Resolves to -1 on success, else to the
   * index of the first counter that was full (nothing is taken then).
   */
  tryAcquire(slots: readonly Slot[]): number | Promise<number>;
  /** Gives back one slot of every counter (exactly once per successful tryAcquire). */
  release(slots: readonly Slot[]): void | Promise<void>;
}

/** Monotonic milliseconds. */
export function monotonicNowMs(): number {
  return performance.now();
}

export interface MemoryLimitStoreOptions {
  /** Clock (tests). */
  readonly now?: () => number;
}

/** The embedded store: two maps; idle buckets and zero counters are dropped, so memory follows the active clients. */
export class MemoryLimitStore implements LimitStore {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #counters = new Map<string, number>();
  readonly #now: () => number;
  #sweepAt = 1024;

  constructor(options: MemoryLimitStoreOptions = {}) {
    this.#now = options.now ?? monotonicNowMs;
  }

  reserve(key: string, amount: number, spec: BucketSpec): number {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#sweepAt) this.#sweep(now);
      bucket = new TokenBucket(spec, now);
      this.#buckets.set(key, bucket);
    } else if (bucket.spec.ratePerSec !== spec.ratePerSec || bucket.spec.burst !== spec.burst) {
      bucket.setSpec(spec);
    }
    return bucket.reserve(amount, now);
  }

  refund(key: string, amount: number): void {
    this.#buckets.get(key)?.refund(amount, this.#now());
  }

  tryAcquire(slots: readonly Slot[]): number {
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if ((this.#counters.get(slot.key) ?? 0) >= slot.limit) return i;
    }
    for (const slot of slots) this.#counters.set(slot.key, (this.#counters.get(slot.key) ?? 0) + 1);
    return -1;
  }

  release(slots: readonly Slot[]): void {
    for (const slot of slots) {
      const n = (this.#counters.get(slot.key) ?? 0) - 1;
      if (n <= 0) this.#counters.delete(slot.key);
      else this.#counters.set(slot.key, n);
    }
  }

  /** Held slots of a counter (tests, diagnostics). */
  held(key: string): number {
    return this.#counters.get(key) ?? 0;
  }

  /** Buckets currently remembered (tests: memory follows active clients). */
  get bucketCount(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) if (bucket.isIdle(now)) this.#buckets.delete(key);
    this.#sweepAt = Math.max(1024, this.#buckets.size * 2);
  }
}
