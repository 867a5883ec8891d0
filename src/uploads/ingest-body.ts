/**
 * Streams a request body into a staged upload (`StagedWriter`, src/storage) with backpressure
 * and bounded memory: the body feeds a Writable that gathers socket chunks (by reference) into
 * runs of at least 1 MiB and hands each run to one `writer.write` (on local disk one positional
 * `writev(2)`, no concatenation copy), so memory stays at the sink's high-water mark whatever
 * the body's size. Observers (digests) see exactly the bytes that reached the storage, in
 * order, only after they did, so a failed or partial write never reaches a digest. Optional
 * checkpoints make long bodies durable while they are still arriving.
 */
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { FerryError } from '../core/errors.ts';
import { channels, publish } from '../core/channels.ts';
import type { StagedCheckpoint, StagedWriter } from '../storage/index.ts';

export interface IngestCheckpoint {
  /** Run after at least this many bytes since the last checkpoint. */
  readonly everyBytes: number;
  /**
   * Called with `writer.commit()`, started at once: it makes every byte written so far durable
   * and claims no more (the writes that follow are not part of it), so the storage flushes
   * while the body streams, as the kernel's writeback does for `dd`. The caller persists the
   * checkpoint it resolves to with its offset. At most one runs at a time; the result waits for
   * the last one, so the caller's own commit always comes after it.
   */
  readonly run: (commit: Promise<StagedCheckpoint>) => Promise<void>;
}

export interface IngestOptions {
  /** Where the body goes: at `writer.offset`, on. */
  readonly writer: StagedWriter;
  /** Most bytes accepted; one more is FERRY_ERR_UPLOAD_TOO_LARGE (nothing of that chunk is written). */
  readonly maxBytes: number;
  /** Detail for the 413 when `maxBytes` is passed. */
  readonly tooLarge: () => FerryError;
  readonly body: Readable;
  /** Stops reading (release requested, shutdown): the body is destroyed, what was written stays. */
  readonly signal: AbortSignal;
  /**
   * Called with each run of bytes once the storage has it, in order. A returned promise
   * (the digest worker is behind) is awaited before more of the body is accepted.
   */
  readonly observe: (chunk: Buffer) => Promise<void> | undefined | void;
  readonly checkpoint?: IngestCheckpoint;
  /** Bytes buffered while a write is in flight (default 4 MiB). */
  readonly highWaterMark?: number;
}

export interface IngestResult {
  /** Bytes now in the staged upload from the writer's starting offset on. */
  readonly bytesWritten: number;
  /** The whole body arrived and the storage has it. */
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

class StagingSink extends Writable {
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
    const before = o.writer.offset;
    let failure: unknown;
    try {
      await o.writer.write(buffers);
    } catch (err) {
      failure = err;
    }
    // What reached the storage (all of it, or the prefix a failing write got through).
    const progressed = o.writer.offset - before;
    let left = progressed;
    let wait: Promise<void> | undefined | void;
    for (const b of buffers) {
      if (left <= 0) break;
      const piece = left >= b.length ? b : b.subarray(0, left);
      wait = o.observe(piece) ?? wait;
      left -= piece.length;
    }
    this.written += progressed;
    this.#sinceCheckpoint += progressed;
    if (progressed > 0) publish(channels.uploadBytes, { bytes: progressed });
    if (wait !== undefined) await wait;
    if (failure !== undefined) throw failure;
    const cp = o.checkpoint;
    if (cp !== undefined && this.#sinceCheckpoint >= cp.everyBytes && this.#checkpoint === undefined) {
      this.#sinceCheckpoint = 0;
      // A failed checkpoint only means less is durable so far; the caller's commit retries.
      const commit = o.writer.commit();
      commit.catch(() => {});
      this.#checkpoint = cp.run(commit).catch(() => {}).finally(() => { this.#checkpoint = undefined; });
    }
  }
}

/**
 * Never throws: the outcome (bytes written, complete or not, why not) is returned.
 *
 * The body is pumped by hand rather than with `pipeline()` on purpose: `pipeline` destroys its
 * source on any error, and destroying an unfinished IncomingMessage destroys the socket, so no
 * 413 / 460 / 507 could be answered any more. Here an early stop only pauses the body and
 * detaches; the route answers and closes the connection (`Connection: close`), or destroys it.
 */
export function ingestBody(options: IngestOptions): Promise<IngestResult> {
  const sink = new StagingSink(options);
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
