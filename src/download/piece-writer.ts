/**
 * Positional, batched writes of one sequential run of bytes into the partial file, with a
 * running CRC-32 per piece (zlib.crc32). Bytes are copied into two reusable batch buffers
 * (512 KiB each by default) that never straddle a piece boundary: one fills while the other is
 * being written, so memory per segment is fixed and the socket's read buffer can be reused at
 * once (the fast HTTP path reads into one buffer per connection).
 *
 * `offer()` is synchronous (for socket read callbacks): it takes what fits and says whether
 * the caller must wait for `drained()`. `push()` is the async form for owned chunks.
 */
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const BATCH_BYTES = 512 * 1024;

/** Recycles batch buffers between writers (one pool per download). */
export interface BufferPool {
  get(): Buffer;
  put(buf: Buffer): void;
}

export function createBufferPool(bytes = BATCH_BYTES, keep = 64): BufferPool {
  const free: Buffer[] = [];
  return {
    get: () => free.pop() ?? Buffer.allocUnsafeSlow(bytes),
    put: (buf) => { if (free.length < keep && buf.length === bytes) free.push(buf); },
  };
}

export interface PieceWriterOptions {
  readonly fh: FileHandle;
  /** First byte this run writes. */
  readonly startPos: number;
  /** CRC-32 of the bytes of the current piece before `startPos` (0 on a piece boundary). */
  readonly crcSeed: number;
  readonly pieceBytes: number;
  /** Complete length, or undefined when unknown (the last piece completes at `finish(true)`). */
  readonly sizeBytes: number | undefined;
  /** Current end of the run (exclusive); may shrink while running (work stealing). */
  readonly end: () => number;
  /** Called in order after each batch is on disk: the new end of the written run, its length, the CRC of the piece so far. */
  readonly onWritten: (writtenEnd: number, bytes: number, crc: number, completesPiece: boolean) => void;
  /** Optional in-order hash (single-stream mode). */
  readonly hash?: Hash;
  readonly buffers?: BufferPool;
  /**
   * Write each offered span at once with pwrite(2) on the calling thread, straight from the
   * caller's buffer (no batch copy, no thread hand-off; the bytes are still hot in this core's
   * cache). Blocks the event loop for the duration of a page-cache write: right for the CLI,
   * not for a server process.
   */
  readonly syncWrites?: boolean;
}

/** What `offer` did: bytes taken, and whether to go on, wait for `drained()`, or stop (end reached). */
export interface OfferResult {
  readonly taken: number;
  readonly state: 'more' | 'blocked' | 'done';
}

export class PieceWriter {
  readonly #o: PieceWriterOptions;
  readonly #pool: BufferPool;
  /** File offset of cur[0]. */
  #pos: number;
  #cur: Buffer | undefined;
  #curLen = 0;
  #crc: number;
  #pieceEnd: number;
  /** cur is full or ends a piece/the run: it must be written before more bytes go in. */
  #mustFlush = false;
  #inflight: Promise<void> | undefined;
  #failed = false;
  #error: unknown;

  constructor(options: PieceWriterOptions) {
    this.#o = options;
    this.#pool = options.buffers ?? createBufferPool();
    this.#pos = options.startPos;
    this.#crc = options.crcSeed;
    this.#pieceEnd = (Math.floor(options.startPos / options.pieceBytes) + 1) * options.pieceBytes;
  }

  /** Bytes before this offset have been accepted (written or batched). */
  get receivedPos(): number {
    return this.#pos + this.#curLen;
  }

  /** Copies from `buf[off, off + len)` as much as fits now. Never throws; failures surface in drained()/finish(). */
  offer(buf: Uint8Array, off: number, len: number): OfferResult {
    if (this.#o.syncWrites === true) return this.#offerSync(buf, off, len);
    let taken = 0;
    while (taken < len) {
      if (this.#failed) return { taken, state: 'blocked' };
      const end = this.#o.end();
      const at = this.#pos + this.#curLen;
      if (at >= end) return { taken, state: 'done' };
      if (this.#mustFlush && !this.#tryFlush()) return { taken, state: 'blocked' };
      const cur = this.#cur ??= this.#pool.get();
      const n = Math.min(len - taken, Math.min(end, this.#pieceEnd) - at, cur.length - this.#curLen);
      cur.set(buf.subarray(off + taken, off + taken + n), this.#curLen);
      this.#curLen += n;
      taken += n;
      const after = at + n;
      if (after === this.#pieceEnd || after === this.#o.sizeBytes || after >= end || this.#curLen === cur.length) {
        this.#mustFlush = true;
        this.#tryFlush();
      }
    }
    return { taken, state: this.receivedPos >= this.#o.end() ? 'done' : 'more' };
  }

  #offerSync(buf: Uint8Array, off: number, len: number): OfferResult {
    let taken = 0;
    while (taken < len) {
      if (this.#failed) return { taken, state: 'blocked' };
      const end = this.#o.end();
      const at = this.#pos;
      if (at >= end) return { taken, state: 'done' };
      const n = Math.min(len - taken, Math.min(end, this.#pieceEnd) - at);
      const data = buf.subarray(off + taken, off + taken + n);
      try {
        let done = 0;
        while (done < n) {
          const w = writeSync(this.#o.fh.fd, data, done, n - done, at + done);
          if (w === 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
          done += w;
        }
      } catch (err) {
        this.#failed = true;
        this.#error = new WriteFailure(err);
        return { taken, state: 'blocked' };
      }
      const crc = crc32(data, this.#crc);
      this.#o.hash?.update(data);
      taken += n;
      this.#pos = at + n;
      const completes = this.#pos === this.#pieceEnd || this.#pos === this.#o.sizeBytes;
      this.#crc = completes ? 0 : crc;
      if (completes) this.#pieceEnd = this.#pos + this.#o.pieceBytes;
      this.#o.onWritten(this.#pos, n, crc, completes);
    }
    return { taken, state: this.#pos >= this.#o.end() ? 'done' : 'more' };
  }

  /** Resolves when a blocked writer can take bytes again; rejects when a write failed. */
  async drained(): Promise<void> {
    if (this.#inflight !== undefined) await this.#inflight;
    this.#throwIfFailed();
  }

  /**
   * Accepts an owned chunk; bytes past the current end are dropped.
   * @returns false once the run has reached its end (stop reading).
   */
  async push(chunk: Uint8Array): Promise<boolean> {
    let off = 0;
    while (off < chunk.length) {
      const r = this.offer(chunk, off, chunk.length - off);
      off += r.taken;
      if (r.state === 'done') return false;
      if (r.state === 'blocked') await this.drained();
    }
    return this.receivedPos < this.#o.end();
  }

  /** Writes what is batched and waits for every write. `endOfData`: the stream ended (completes the last piece when the size was unknown). */
  async finish(endOfData = false): Promise<void> {
    await this.drained();
    const after = this.#pos + this.#curLen;
    const unknownEnd = endOfData && this.#o.sizeBytes === undefined;
    if (this.#curLen > 0) {
      this.#mustFlush = true;
      this.#tryFlush(unknownEnd);
    } else if (unknownEnd && after % this.#o.pieceBytes !== 0) {
      // The stream ended mid-piece with nothing batched: that piece is complete as written.
      this.#o.onWritten(after, 0, this.#crc, true);
      this.#crc = 0;
    }
    await this.drained();
    this.#release();
  }

  /** Waits for the write in flight (if any) and drops the batch; never throws. Use on errors. */
  async settle(): Promise<void> {
    if (this.#inflight !== undefined) await this.#inflight;
    this.#curLen = 0;
    this.#mustFlush = false;
    this.#release();
  }

  #release(): void {
    if (this.#cur !== undefined && this.#curLen === 0) {
      this.#pool.put(this.#cur);
      this.#cur = undefined;
    }
  }

  #throwIfFailed(): void {
    if (this.#failed) throw this.#error;
  }

  /** Starts writing `cur` unless a write is in flight. */
  #tryFlush(forceComplete = false): boolean {
    if (this.#inflight !== undefined || this.#failed) return false;
    const cur = this.#cur;
    if (cur === undefined || this.#curLen === 0) { this.#mustFlush = false; return true; }
    const bytes = this.#curLen;
    const pos = this.#pos;
    const after = pos + bytes;
    const completes = forceComplete || after === this.#pieceEnd || after === this.#o.sizeBytes;
    const data = cur.subarray(0, bytes);
    const crc = crc32(data, this.#crc);
    this.#o.hash?.update(data);
    this.#pos = after;
    this.#curLen = 0;
    this.#cur = undefined;
    this.#mustFlush = false;
    this.#crc = completes ? 0 : crc;
    if (completes) this.#pieceEnd = after + this.#o.pieceBytes;
    this.#inflight = writeAll(this.#o.fh, data, pos).then(
      () => {
        this.#inflight = undefined;
        this.#pool.put(cur);
        this.#o.onWritten(after, bytes, crc, completes);
      },
      (err: unknown) => {
        this.#inflight = undefined;
        this.#failed = true;
        this.#error = new WriteFailure(err);
      },
    );
    return true;
  }
}

/** A write to the local file failed (disk full, permissions): final, never retried. */
export class WriteFailure extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'WriteFailure';
  }
}

/** pwrite(2) until every byte is written (a regular file rarely writes short, but may). */
export async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
    done += bytesWritten;
  }
}
