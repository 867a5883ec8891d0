/**
 * Byte pacing. Two forms over one mechanism:
 *
 * - `createBytePacer`: the caller asks `take(n)` before it writes `n` bytes and waits when
 *   told to. Nothing is wrapped or copied, so a route can keep its own fast pump (pooled
 *   positional reads) and still be paced; no promise is made while the buckets hold enough.
 * - `paceStream`: a readable that hands on the body's bytes no faster than the buckets allow.
 *   It delays *reads*: the next slice is pulled from the source only when the consumer wants
 *   more (backpressure) and the buckets have granted it (a timer), so at most one source chunk
 *   is held, never a growing buffer. Chunks are cut into slices (views, no copy) so that slow
 *   rates stay smooth and transfers sharing a bucket interleave fairly.
 */
import { Readable } from 'node:stream';
import { sleep } from '../core/abort.ts';
import type { BucketSpec, TokenBucket } from './token-bucket.ts';
import { monotonicNowMs, type LimitStore } from './limit-store.ts';

/** One bucket a transfer draws from: its own (local) or a shared one in the store. */
export type PaceBucket =
  | { readonly kind: 'local'; readonly bucket: TokenBucket; readonly exemptBytes: number }
  | { readonly kind: 'shared'; readonly key: string; readonly spec: BucketSpec; readonly exemptBytes: number };

export interface BytePacerOptions {
  readonly buckets: readonly PaceBucket[];
  readonly store: LimitStore;
  /** Aborts the waits (the client went away). */
  readonly signal?: AbortSignal;
  readonly now?: () => number;
  /** Called after each wait: bytes that waited and for how long (metrics). */
  readonly onThrottle?: (bytes: number, waitMs: number) => void;
}

/** Paces one transfer's bytes; see `createBytePacer`. */
export interface BytePacer {
  /**
   * Accounts for `bytes` about to be sent. Returns undefined when they may go now, else a
   * promise that resolves when they may (or rejects when the signal aborts; the reserved
   * tokens are then given back).
   */
  take(bytes: number): Promise<void> | undefined;
}

/** Tokens a slice of `n` bytes starting at `offset` owes a bucket whose first `exempt` bytes are free. */
function owed(offset: number, n: number, exempt: number): number {
  if (offset + n <= exempt) return 0;
  return offset >= exempt ? n : offset + n - exempt;
}

export function createBytePacer(options: BytePacerOptions): BytePacer {
  const { buckets, store, signal, onThrottle } = options;
  const now = options.now ?? monotonicNowMs;
  let offset = 0;
  const taken: number[] = new Array<number>(buckets.length).fill(0);

  const refundAll = async (): Promise<void> => {
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      const amount = taken[i]!;
      if (amount === 0) continue;
      if (b.kind === 'local') b.bucket.refund(amount, now());
      else await store.refund(b.key, amount, b.spec);
    }
  };

  const wait = async (n: number, waitMs: number): Promise<void> => {
    // Sub-millisecond waits are not slept: the debt stays in the bucket and the next
    // reservation waits for it, which the burst (≥ one slice, ≥ 50 ms) absorbs.
    if (waitMs < 1) return;
    try {
      await sleep(waitMs, signal);
    } catch (err) {
      await refundAll();
      throw err;
    }
    onThrottle?.(n, waitMs);
  };

  const finishAsync = async (n: number, waitMs: number, rest: number, pending: Promise<number>): Promise<void> => {
    let ms = Math.max(waitMs, await pending);
    for (let i = rest; i < buckets.length; i++) {
      const b = buckets[i]!;
      const amount = taken[i]!;
      if (amount === 0) continue;
      const d = b.kind === 'local' ? b.bucket.reserve(amount, now()) : await store.reserve(b.key, amount, b.spec);
      if (d > ms) ms = d;
    }
    await wait(n, ms);
  };

  return {
    take(n) {
      signal?.throwIfAborted();
      let waitMs = 0;
      for (let i = 0; i < buckets.length; i++) taken[i] = owed(offset, n, buckets[i]!.exemptBytes);
      offset += n;
      for (let i = 0; i < buckets.length; i++) {
        const b = buckets[i]!;
        const amount = taken[i]!;
        if (amount === 0) continue;
        const d = b.kind === 'local' ? b.bucket.reserve(amount, now()) : store.reserve(b.key, amount, b.spec);
        if (typeof d !== 'number') return finishAsync(n, waitMs, i + 1, d);
        if (d > waitMs) waitMs = d;
      }
      return waitMs < 1 ? undefined : wait(n, waitMs);
    },
  };
}

export interface PaceStreamOptions extends BytePacerOptions {
  /** Largest piece handed on at once. */
  readonly sliceBytes: number;
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk));
}

/**
 * Wraps `body`. Destroying the result (or aborting `signal`) destroys `body` and gives back
 * any tokens reserved for bytes that were never sent.
 */
export function paceStream(body: Readable, options: PaceStreamOptions): Readable {
  const { sliceBytes } = options;
  const closed = new AbortController();
  const signal = options.signal === undefined ? closed.signal : AbortSignal.any([options.signal, closed.signal]);
  const pacer = createBytePacer({ ...options, signal });

  async function* paced(): AsyncGenerator<Buffer> {
    for await (const raw of body) {
      const chunk = toBuffer(raw);
      for (let start = 0; start < chunk.length; start += sliceBytes) {
        const n = Math.min(sliceBytes, chunk.length - start);
        const w = pacer.take(n);
        if (w !== undefined) await w;
        yield chunk.length === n ? chunk : chunk.subarray(start, start + n);
      }
    }
  }

  const out = Readable.from(paced(), { objectMode: false, highWaterMark: sliceBytes });
  out.once('close', () => { closed.abort(); });
  return out;
}
