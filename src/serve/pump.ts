/**
 * Moves a download body into the HTTP response: one owner per byte stream, `write() ===
 * false` → wait for `'drain'` or the abort signal, every source destroyed on every exit path,
 * no per-chunk logging, and a memory cost per connection that stays fixed whatever the file
 * size or the client's speed (SPEC §2.1).
 *
 * Memory policy ("slow start"): what a stalled client pins is the write in flight when its
 * socket buffers filled up. So until a connection has taken PROVE_BYTES (more than any kernel
 * socket buffering) without a drain slower than SLOW_DRAIN_MS, its writes are small
 * (SMALL_CHUNK_BYTES); after that they are --read-buffer-size, and a slow drain sends it back
 * to small writes. A reader that stalls from the start pins one or two small buffers; a fast
 * client pays few syscalls and callbacks per GiB.
 *
 * Sources:
 * - storage readers that offer positional reads into caller buffers (`readAt`) are read in
 *   --read-buffer-size blocks (one thread-pool round trip each) into a shared, bounded buffer
 *   pool: no allocation and no garbage per chunk. While a connection is unproven, each block
 *   is written as small copies and given back to the pool before any wait for the socket
 *   (the unsent rest is read again after the drain);
 * - otherwise each window of the file is an `openRead` stream whose highWaterMark is the
 *   current chunk size (every chunk a fresh buffer: the garbage collector is then the
 *   dominant cost, which is why readAt exists).
 *
 * Throttling (`pacing`): the pump pays the transfer's pacer before it reads (positional) or
 * writes (streams) each block, awaiting only when the pacer says to wait, and reads blocks of
 * at most the pacing's `chunkBytes`: a transfer waiting for its rate holds no pooled buffer,
 * and a limit that does not bind costs one bucket check per block.
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { FerryError } from '../core/index.ts';
import type { ByteRange } from '../http/index.ts';
import type { FileHandleReader } from '../storage/index.ts';
import type { BytePacer, TransferControl, TransferSubject } from '../limits/index.ts';

/** Chunk size until a client has proven it reads (and after it slows down). */
export const SMALL_CHUNK_BYTES = 32 * 1024;
/** Bytes a client must take before it gets full-size chunks (above any kernel socket buffering). */
export const PROVE_BYTES = 8 * 1024 * 1024;
/** A drain slower than this (under 256 KiB/s for a full chunk) marks the client as slow again. */
export const SLOW_DRAIN_MS = 1000;

/** A body: literal bytes (multipart framing) and file ranges, in order. */
export type BodyPart = Buffer | ByteRange;

/** Optional storage capability: positional read into the caller's buffer (Go's io.ReaderAt). */
export interface ReaderAt {
  /** Reads up to `buffer.length` bytes at `position`; resolves to the count (0 = end of file). */
  readAt(buffer: Uint8Array, position: number): Promise<number>;
}

export function hasReadAt(reader: FileHandleReader): reader is FileHandleReader & ReaderAt {
  return typeof (reader as Partial<ReaderAt>).readAt === 'function';
}

/** Free buffers by size, reused across transfers; bounded so idle memory stays small. */
class BufferPool {
  readonly #free = new Map<number, Buffer[]>();
  readonly #maxFreeBytes: number;
  #freeBytes = 0;

  constructor(maxFreeBytes: number) { this.#maxFreeBytes = maxFreeBytes; }

  acquire(size: number): Buffer {
    const list = this.#free.get(size);
    const buf = list?.pop();
    if (buf !== undefined) { this.#freeBytes -= size; return buf; }
    // Slow: outside Node's small-buffer slab, so releasing it frees real memory.
    return Buffer.allocUnsafeSlow(size);
  }

  release(buf: Buffer): void {
    if (this.#freeBytes + buf.length > this.#maxFreeBytes) return; // let GC take it
    let list = this.#free.get(buf.length);
    if (list === undefined) { list = []; this.#free.set(buf.length, list); }
    list.push(buf);
    this.#freeBytes += buf.length;
  }
}

/** Process-wide pool: at most 8 MiB of idle buffers. */
const POOL = new BufferPool(8 * 1024 * 1024);

/**
 * Big read buffers held by unproven transfers at one time (they are copied out and given
 * back before any wait): when many clients start at once (200 stalled readers), the rest read
 * small blocks directly instead of each taking a big buffer.
 */
const UNPROVEN_BIG_BUDGET_BYTES = 8 * 1024 * 1024;
let unprovenBigBytes = 0;

/** How a throttled body is paced: its pacer and the largest block worth holding for it. */
export interface BodyPacing {
  readonly pacer: BytePacer;
  /** TransferControl.chunkBytes: reads (and paced writes) are at most this big. */
  readonly chunkBytes: number;
}

/** The pacing of one download, or undefined when no rate applies to `subject` (the pump then never asks). */
export function pacingFor(transfer: TransferControl | undefined, subject: TransferSubject, signal: AbortSignal): BodyPacing | undefined {
  const pacer = transfer?.pacer(subject, signal);
  if (pacer === undefined) return undefined;
  return { pacer, chunkBytes: transfer?.chunkBytes(subject) ?? Number.POSITIVE_INFINITY };
}

export interface PumpOptions {
  /** Largest chunk (--read-buffer-size). */
  readonly maxChunkBytes: number;
  readonly signal: AbortSignal;
  /** Called with every chunk's length as it is handed to the socket. */
  readonly onBytes: (n: number) => void;
  /** Throttling; undefined when no rate applies. */
  readonly pacing?: BodyPacing | undefined;
}

/** Adapts the chunk size to what the client has shown it can take. */
class ChunkSizer {
  #size: number;
  #sent = 0;
  readonly #small: number;
  readonly #max: number;

  constructor(max: number) {
    this.#max = Math.max(max, 1);
    this.#small = Math.min(SMALL_CHUNK_BYTES, this.#max);
    this.#size = this.#small;
  }

  get size(): number { return this.#size; }
  get small(): number { return this.#small; }
  get max(): number { return this.#max; }
  /** The client has taken PROVE_BYTES without a slow drain: full-size writes. */
  get proven(): boolean { return this.#size === this.#max && this.#max > this.#small; }

  /** After a chunk of `n` bytes went out; `drainMs` is how long the socket took to take it. */
  record(n: number, drainMs: number): void {
    this.#sent += n;
    if (drainMs > SLOW_DRAIN_MS) { this.#size = this.#small; this.#sent = 0; return; }
    if (this.#sent >= PROVE_BYTES) this.#size = this.#max;
  }
}

/**
 * One sizer per connection, not per response: a keep-alive client that fetches many ranges
 * (aria2c, a video player) proves itself once.
 */
const sizers = new WeakMap<object, ChunkSizer>();
function sizerFor(res: ServerResponse, max: number): ChunkSizer {
  const key = res.socket ?? res;
  let sizer = sizers.get(key);
  if (sizer === undefined || sizer.max !== Math.max(max, 1)) {
    sizer = new ChunkSizer(max);
    sizers.set(key, sizer);
  }
  return sizer;
}

/**
 * Waits for `'drain'` with one listener per transfer instead of `once()` per chunk: a stalled
 * or slow transfer waits many times, and each `once(..., { signal })` allocates a promise,
 * two listeners and an abort registration.
 */
class DrainWaiter implements Disposable {
  readonly #res: ServerResponse;
  readonly #signal: AbortSignal;
  #resolve: (() => void) | undefined;
  #reject: ((err: unknown) => void) | undefined;
  readonly #onDrain = (): void => { const r = this.#resolve; this.#clear(); r?.(); };
  readonly #onAbort = (): void => { const r = this.#reject; this.#clear(); r?.(this.#signal.reason); };
  readonly #onClose = (): void => { const r = this.#reject; this.#clear(); r?.(Object.assign(new Error('response closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })); };

  constructor(res: ServerResponse, signal: AbortSignal) {
    this.#res = res;
    this.#signal = signal;
    res.on('drain', this.#onDrain);
    res.on('close', this.#onClose);
    signal.addEventListener('abort', this.#onAbort);
  }

  #clear(): void { this.#resolve = undefined; this.#reject = undefined; }

  /** Writes `chunk`; when the socket is full, waits for it to drain. Resolves to the wait in ms. */
  async write(chunk: Buffer, done?: () => void): Promise<number> {
    return this.tryWrite(chunk, done) ? 0 : this.waitDrain();
  }

  /** Writes without waiting; false when the caller should wait for `waitDrain()`. */
  tryWrite(chunk: Buffer, done?: () => void): boolean {
    return done === undefined ? this.#res.write(chunk) : this.#res.write(chunk, done);
  }

  /** Waits for `'drain'` (or abort / close); resolves to the wait in ms. */
  async waitDrain(): Promise<number> {
    this.#signal.throwIfAborted();
    if (this.#res.destroyed) throw Object.assign(new Error('response closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => { this.#resolve = resolve; this.#reject = reject; });
    return performance.now() - t0;
  }

  [Symbol.dispose](): void {
    this.#res.removeListener('drain', this.#onDrain);
    this.#res.removeListener('close', this.#onClose);
    this.#signal.removeEventListener('abort', this.#onAbort);
  }
}

function shrank(): FerryError {
  // Fail loudly rather than send a short body as if it were complete.
  return new FerryError('FERRY_ERR_STORAGE_CHANGED', 'File shrank while it was being read');
}

/**
 * Reads up to `buf.length` (at most `remaining`) bytes at `pos` into a pooled `buf` and hands
 * them to `send`, which takes ownership of `buf`; on a read error `buf` goes back to the pool.
 */
async function readInto(reader: ReaderAt, buf: Buffer, remaining: number, pos: number, send: (buf: Buffer, n: number) => Promise<void>): Promise<number> {
  const want = Math.min(buf.length, remaining);
  let n: number;
  try {
    n = await reader.readAt(want === buf.length ? buf : buf.subarray(0, want), pos);
  } catch (err) {
    POOL.release(buf);
    throw err;
  }
  if (n === 0) { POOL.release(buf); throw shrank(); }
  await send(buf, n);
  return n;
}

/**
 * Writes `parts` to `res` and ends it; resolves when the response has finished. Rejects when
 * the file fails or `signal` aborts (client gone); every stream it opened is destroyed first.
 */
export async function pumpParts(reader: FileHandleReader, parts: readonly BodyPart[], res: ServerResponse, options: PumpOptions): Promise<void> {
  const { signal, pacing } = options;
  // Throttled: blocks no bigger than what is worth holding at the transfer's rate.
  const maxChunkBytes = pacing === undefined ? options.maxChunkBytes : Math.max(1, Math.min(options.maxChunkBytes, pacing.chunkBytes));
  const sizer = sizerFor(res, maxChunkBytes);
  const out = new DrainWaiter(res, signal);
  try {
    await pumpPartsWith(out, reader, parts, options, maxChunkBytes, sizer);
  } finally {
    out[Symbol.dispose]();
  }
  signal.throwIfAborted();
  res.end();
  await finished(res);
}

async function pumpPartsWith(out: DrainWaiter, reader: FileHandleReader, parts: readonly BodyPart[], options: PumpOptions, maxChunkBytes: number, sizer: ChunkSizer): Promise<void> {
  const { signal, onBytes } = options;
  const pacer = options.pacing?.pacer;
  const positional = hasReadAt(reader) ? reader : undefined;
  for (const part of parts) {
    if (Buffer.isBuffer(part)) {
      if (pacer !== undefined) {
        const wait = pacer.take(part.length);
        if (wait !== undefined) await wait;
      }
      onBytes(part.length);
      await out.write(part);
      continue;
    }
    let pos = part.start;
    const end = part.end;
    while (pos <= end) {
      signal.throwIfAborted();
      if (positional !== undefined) {
        const bufSize = maxChunkBytes;
        const small = sizer.small;
        if (pacer !== undefined) {
          // Throttled: pay, then read and send one block, small until the client has proven it
          // reads. Paying before the read means a transfer waiting for its rate holds no
          // buffer (so no big-read-small-copies either), and small blocks keep the bytes of
          // connections sharing a bucket interleaved finely.
          const want = Math.min(sizer.proven ? bufSize : small, end - pos + 1);
          const wait = pacer.take(want);
          if (wait !== undefined) await wait;
          const n = await readInto(positional, POOL.acquire(want <= small ? small : bufSize), want, pos, async (buf, got) => {
            sizer.record(got, await out.write(got === buf.length ? buf : buf.subarray(0, got), () => { POOL.release(buf); }));
          });
          pos += n;
          onBytes(n);
          continue;
        }
        if (sizer.proven) {
          // Proven: one big positional read (one thread-pool round trip) and one big write.
          const n = await readInto(positional, POOL.acquire(bufSize), end - pos + 1, pos, async (buf, got) => {
            // The socket owns `buf` until the write callback: only then back to the pool.
            sizer.record(got, await out.write(got === buf.length ? buf : buf.subarray(0, got), () => { POOL.release(buf); }));
          });
          pos += n;
          onBytes(n);
          continue;
        }
        const remaining = end - pos + 1;
        if (remaining <= bufSize) {
          // The rest fits in one block (a short body, e.g. a 256 KiB range): one read, one
          // write. A client that stalls here pins at most this one block.
          const n = await readInto(positional, POOL.acquire(remaining <= small ? small : bufSize), remaining, pos, async (buf, got) => {
            sizer.record(got, await out.write(got === buf.length ? buf : buf.subarray(0, got), () => { POOL.release(buf); }));
          });
          pos += n;
          onBytes(n);
          continue;
        }
        if (unprovenBigBytes + bufSize > UNPROVEN_BIG_BUDGET_BYTES) {
          // Many unproven transfers at once: small direct reads.
          const n = await readInto(positional, POOL.acquire(small), remaining, pos, async (buf, got) => {
            sizer.record(got, await out.write(got === buf.length ? buf : buf.subarray(0, got), () => { POOL.release(buf); }));
          });
          pos += n;
          onBytes(n);
          continue;
        }
        // Unproven: one big read, written as small copies, so a client that stalls pins one
        // small buffer; the big one goes back before any wait (the rest is read again later).
        unprovenBigBytes += bufSize;
        const buf = POOL.acquire(bufSize);
        let congested = false;
        try {
          const want = Math.min(bufSize, end - pos + 1);
          const n = await positional.readAt(want === bufSize ? buf : buf.subarray(0, want), pos);
          if (n === 0) throw shrank();
          let off = 0;
          while (off < n && !congested) {
            const len = Math.min(small, n - off);
            const slice = POOL.acquire(small);
            buf.copy(slice, 0, off, off + len);
            off += len;
            pos += len;
            onBytes(len);
            congested = !out.tryWrite(len === small ? slice : slice.subarray(0, len), () => { POOL.release(slice); });
            if (!congested) sizer.record(len, 0);
          }
        } finally {
          POOL.release(buf);
          unprovenBigBytes -= bufSize;
        }
        if (congested) sizer.record(small, await out.waitDrain());
      } else {
        // One stream per window, sized for the client's current chunk size.
        const size = sizer.size;
        const windowEnd = size < maxChunkBytes ? Math.min(end, pos + PROVE_BYTES - 1) : end;
        const stream = reader.openRead({ start: pos, end: windowEnd }, { highWaterMark: size, signal });
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            if (pacer !== undefined) {
              const wait = pacer.take(chunk.length);
              if (wait !== undefined) await wait;
            }
            pos += chunk.length;
            onBytes(chunk.length);
            const drainMs = await out.write(chunk);
            sizer.record(chunk.length, drainMs);
            if (sizer.size !== size) break; // re-open with the new chunk size
          }
        } finally {
          stream.destroy();
        }
      }
    }
  }
}

/**
 * The same body as one Readable (for hashing a partial body). Lazy: nothing is allocated or
 * read until the first `read()`.
 */
export function partsToReadable(reader: FileHandleReader, parts: readonly BodyPart[], chunkBytes: number, signal: AbortSignal): Readable {
  let iterator: AsyncIterator<Buffer> | undefined;
  let reading = false;
  async function* generate(): AsyncGenerator<Buffer> {
    for (const part of parts) {
      if (Buffer.isBuffer(part)) { yield part; continue; }
      yield* reader.openRead(part, { highWaterMark: chunkBytes, signal }) as AsyncIterable<Buffer>;
    }
  }
  return new Readable({
    highWaterMark: chunkBytes,
    read() {
      if (reading) return;
      reading = true;
      iterator ??= generate();
      const pull = (): void => {
        iterator!.next().then(({ value, done }) => {
          if (done === true) { this.push(null); return; }
          // Keep pulling while the consumer wants more; stop when push() says the buffer is full.
          if (this.push(value)) pull();
          else reading = false;
        }, (err: unknown) => { this.destroy(err as Error); });
      };
      pull();
    },
    destroy(err, callback) {
      const it = iterator;
      iterator = undefined;
      if (it?.return === undefined) { callback(err); return; }
      it.return(undefined).then(() => callback(err), () => callback(err));
    },
  });
}

/**
 * Writes a Readable (a compressed body, an archive) to `res` with backpressure and ends it.
 * With `pacing`, each chunk goes out in pieces of at most `chunkBytes` (views, no copy), each
 * paid for before it is written.
 */
export async function pumpReadable(source: Readable, res: ServerResponse, signal: AbortSignal, onBytes: (n: number) => void, pacing?: BodyPacing): Promise<void> {
  const out = new DrainWaiter(res, signal);
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (pacing === undefined) {
        onBytes(chunk.length);
        await out.write(chunk);
        continue;
      }
      const piece = Math.max(1, pacing.chunkBytes);
      for (let start = 0; start < chunk.length; start += piece) {
        const n = Math.min(piece, chunk.length - start);
        const wait = pacing.pacer.take(n);
        if (wait !== undefined) await wait;
        onBytes(n);
        await out.write(n === chunk.length ? chunk : chunk.subarray(start, start + n));
      }
    }
  } finally {
    out[Symbol.dispose]();
    source.destroy();
  }
  signal.throwIfAborted();
  res.end();
  await finished(res);
}
