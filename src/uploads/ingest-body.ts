/**
 * Streams a request body into a file at a position, with backpressure and bounded memory: the
 * body feeds a Writable that gathers socket chunks (by reference) into runs of at least 1 MiB
 * and hands each run to one positional `writev(2)` (no concatenation copy), so memory stays at
 * the sink's high-water mark whatever the body's size. Observers (digests) see exactly the bytes that
 * reached the file, in order, only after they did, so a failed or partial write never reaches
 * a digest. Optional checkpoints make long bodies durable while they are still arriving.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { FerryError } from '../core/errors.ts';
import { channels, publish } from '../core/channels.ts';

export interface IngestCheckpoint {
  /** Run after at least this many bytes since the last checkpoint. */
  readonly everyBytes: number;
  /**
   * Makes the first `bytesWritten` bytes durable (fsync + persisted offset). It runs beside
   * the writes that follow, not in front of them (fdatasync covers every write issued before
   * it; the offset it persists claims no more), so the disk flushes while the body streams,
   * as the kernel's writeback does for `dd`. At most one runs at a time; the result waits
   * for the last one, so the caller's own commit always comes after it.
   */
  readonly run: (bytesWritten: number) => Promise<void>;
}

export interface IngestOptions {
  readonly file: FileHandle;
  /** File position of the first body byte. */
  readonly position: number;
  /** Most bytes accepted; one more is FERRY_ERR_UPLOAD_TOO_LARGE (nothing of that chunk is written). */
  readonly maxBytes: number;
  /** Detail for the 413 when `maxBytes` is passed. */
  readonly tooLarge: () => FerryError;
  readonly body: Readable;
  /** Stops reading (release requested, shutdown): the body is destroyed, what was written stays. */
  readonly signal: AbortSignal;
  /**
   * Called with each run of bytes once it is in the file, in file order. A returned promise
   * (the digest worker is behind) is awaited before more of the body is accepted.
   */
  readonly observe: (chunk: Buffer) => Promise<void> | undefined | void;
  readonly checkpoint?: IngestCheckpoint;
  /** Bytes buffered while a write is in flight (default 4 MiB). */
  readonly highWaterMark?: number;
}

export interface IngestResult {
  /** Bytes now in the file from `position` on. */
  readonly bytesWritten: number;
  /** The whole body arrived and is in the file. */
  readonly complete: boolean;
  /** Why it stopped early: the client went away, a limit, a disk error, a release request. */
  readonly error: unknown;
}

const DEFAULT_HWM = 4 * 1024 * 1024;
/**
 * Socket reads arrive in ~64 KiB pieces; writing each alone costs a thread-pool round trip
 * per piece. They are gathered (by reference, no copy) until this many bytes, then written
 * with one writev(2).
 */
const MIN_WRITE_BYTES = 1024 * 1024;

class FileSink extends Writable {
  readonly #o: IngestOptions;
  #inflight: Promise<void> = Promise.resolve();
  #checkpoint: Promise<void> | undefined;
  #sinceCheckpoint = 0;
  /** Accepted, not yet written (at most MIN_WRITE_BYTES). */
  #gathered: Buffer[] = [];
  #gatheredBytes = 0;
  written = 0;

  constructor(options: IngestOptions) {
    super({ highWaterMark: options.highWaterMark ?? DEFAULT_HWM });
    this.#o = options;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#accept([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.#accept(chunks.map((c) => c.chunk), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#gatheredBytes > 0) this.#run(callback);
    else callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A positional write already handed to the kernel finishes anyway: wait for it, so that
    // `written` is final when the ingest settles. Bytes gathered but not written yet are
    // written too: a body cut short keeps everything that arrived (tus §PATCH).
    const flush = async (): Promise<void> => {
      await this.#inflight;
      if (this.#gatheredBytes > 0) {
        const buffers = this.#take();
        await this.#writeAll(buffers).catch(() => {});
      }
    };
    this.#inflight = flush();
    void this.#inflight.then(() => { callback(error); });
  }

  /** Resolves once no write and no checkpoint is in flight. */
  async idle(): Promise<void> {
    await this.#inflight;
    await this.#checkpoint;
  }

  #accept(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    let total = 0;
    for (const b of buffers) total += b.length;
    if (this.written + this.#gatheredBytes + total > this.#o.maxBytes) { callback(this.#o.tooLarge()); return; }
    for (const b of buffers) this.#gathered.push(b);
    this.#gatheredBytes += total;
    if (this.#gatheredBytes >= MIN_WRITE_BYTES) this.#run(callback);
    else callback();
  }

  #take(): Buffer[] {
    const buffers = this.#gathered;
    this.#gathered = [];
    this.#gatheredBytes = 0;
    return buffers;
  }

  #run(callback: (error?: Error | null) => void): void {
    const p = this.#writeAll(this.#take());
    this.#inflight = p.then(() => {}, () => {});
    p.then(() => { callback(); }, (err: unknown) => { callback(err as Error); });
  }

  async #writeAll(buffers: Buffer[]): Promise<void> {
    const o = this.#o;
    let pending = buffers;
    while (pending.length > 0) {
      const { bytesWritten } = await o.file.writev(pending, o.position + this.written);
      if (bytesWritten <= 0) throw new FerryError('FERRY_ERR_INTERNAL', 'a write to the upload data made no progress');
      let left = bytesWritten;
      const rest: Buffer[] = [];
      let wait: Promise<void> | undefined | void;
      for (const b of pending) {
        if (left >= b.length) { wait = o.observe(b) ?? wait; left -= b.length; }
        else if (left > 0) { wait = o.observe(b.subarray(0, left)) ?? wait; rest.push(b.subarray(left)); left = 0; }
        else rest.push(b);
      }
      if (wait !== undefined) await wait;
      pending = rest;
      this.written += bytesWritten;
      this.#sinceCheckpoint += bytesWritten;
      publish(channels.uploadBytes, { bytes: bytesWritten });
    }
    const cp = o.checkpoint;
    if (cp !== undefined && this.#sinceCheckpoint >= cp.everyBytes && this.#checkpoint === undefined) {
      this.#sinceCheckpoint = 0;
      // A failed checkpoint only means less is durable so far; the caller's commit retries.
      this.#checkpoint = cp.run(this.written).catch(() => {}).finally(() => { this.#checkpoint = undefined; });
    }
  }
}

/**
 * Never throws: the outcome (bytes in the file, complete or not, why not) is returned.
 *
 * The body is pumped by hand rather than with `pipeline()` on purpose: `pipeline` destroys its
 * source on any error, and destroying an unfinished IncomingMessage destroys the socket, so no
 * 413 / 460 / 507 could be answered any more. Here an early stop only pauses the body and
 * detaches; the route answers and closes the connection (`Connection: close`), or destroys it.
 */
export function ingestBody(options: IngestOptions): Promise<IngestResult> {
  const sink = new FileSink(options);
  const body = options.body;
  const signal = options.signal;
  return new Promise<IngestResult>((resolve) => {
    let settled = false;
    const onData = (chunk: Buffer): void => { if (!sink.write(chunk)) body.pause(); };
    const onDrain = (): void => { body.resume(); };
    const onEnd = (): void => { sink.end(); };
    const onFinish = (): void => { settle(true, undefined); };
    const onError = (err: unknown): void => { settle(false, err); };
    const onClose = (): void => { if (!body.readableEnded) settle(false, new FerryError('FERRY_ERR_UPLOAD_INCOMPLETE', 'the client closed the connection before the body ended')); };
    const onAbort = (): void => { settle(false, signal.reason); };
    function settle(complete: boolean, error: unknown): void {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      sink.off('drain', onDrain);
      sink.off('finish', onFinish);
      sink.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (!complete) {
        body.pause();
        if (!sink.destroyed) sink.destroy();
      }
      void sink.idle().then(() => { resolve({ bytesWritten: sink.written, complete, error }); });
    }
    if (signal.aborted) { settle(false, signal.reason); return; }
    signal.addEventListener('abort', onAbort, { once: true });
    sink.on('drain', onDrain);
    sink.on('finish', onFinish);
    sink.on('error', onError);
    body.on('error', onError);
    body.on('close', onClose);
    body.on('end', onEnd);
    body.on('data', onData);
    if (body.readableEnded) sink.end();
  });
}
