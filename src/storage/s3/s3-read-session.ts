/**
 * One resumable read of an object range from an S3-compatible store: the body of a ranged
 * GetObject, continued with a fresh ranged GET from the exact next offset when the body
 * breaks (connection reset, early end) or stalls (no byte for `idleTimeoutMs`).
 *
 * Every GET of a session is pinned to one version: it carries `If-Match: <ETag>` and its
 * answer's ETag and `Content-Range` are checked, so a continuation never splices bytes of
 * another version (the store ignoring If-Match included). A session gives up after
 * `maxResumes` failures in a row without a new byte; the reader's stream then fails, which
 * before the answer started is a 502/503 problem+json and after it a cut connection.
 *
 * The GetObject calls themselves (500, 503 SlowDown, throttling, a reset or a timeout before
 * the answer's headers) are retried by the SDK's standard retry strategy (s3-storage.ts);
 * this file handles what the SDK cannot: a body that fails after the SDK handed it over.
 */
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { FerryError } from '../../core/errors.ts';

/** What one GET of the session answered (the SDK's GetObject output, reduced). */
export interface RangeAnswer {
  readonly body: Readable;
  /** The answer's ETag without quotes. */
  readonly etag: string | undefined;
  readonly contentRange: string | undefined;
}

export interface ReadSessionOptions {
  readonly start: number;
  /** Last byte, inclusive. */
  readonly end: number;
  /** The object's size (checked against every Content-Range). */
  readonly size: number;
  /** The version the session is pinned to (ETag without quotes). */
  readonly etag: string | undefined;
  /** One ranged GET (`bytes=first-last`, If-Match the pinned ETag), aborted by `signal`. */
  readonly get: (range: string, signal: AbortSignal) => Promise<RangeAnswer>;
  /** A body that sends nothing for this long is cut and continued. */
  readonly idleTimeoutMs: number;
  /** Continuations in a row without a new byte before the read fails. */
  readonly maxResumes: number;
  /** Maps a store or network error to Ferry's catalogue (mapS3Error). */
  readonly mapError: (err: unknown, signal: AbortSignal) => unknown;
  /** [0, 1) source for the backoff's jitter (tests pass a seeded one). */
  readonly random?: () => number;
}

/** Backoff before continuation `attempt` (1-based): full jitter over 100 ms · 2^(attempt−1), at most 2 s. Pure. */
export function resumeDelayMs(attempt: number, random: number): number {
  return Math.floor(random * Math.min(2000, 100 * 2 ** Math.max(0, attempt - 1)));
}

/** Node and stream error codes that mean the body broke on the way (worth a continuation). */
const BROKEN_BODY_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

/** The body stopped sending for longer than the idle timeout. */
class BodyStalled extends Error {
  constructor(ms: number) {
    super(`the object store sent nothing for ${ms} ms`);
    this.name = 'BodyStalled';
  }
}

/** The body ended before the bytes its range promised. */
class BodyEndedEarly extends Error {
  constructor() {
    super('the object store ended the body early');
    this.name = 'BodyEndedEarly';
  }
}

/** True for a body failure a continuation can repair (not a changed object, not a wrong answer). Pure. */
export function isBrokenBody(err: unknown): boolean {
  if (err instanceof BodyStalled || err instanceof BodyEndedEarly) return true;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  if (e.name === 'TimeoutError') return true;
  if (typeof e.code === 'string' && BROKEN_BODY_CODES.has(e.code)) return true;
  return e.message === 'aborted';
}

function unavailable(detail: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', detail, { cause, headers: { 'retry-after': '1' } });
}

function badGateway(detail: string): FerryError {
  return new FerryError('FERRY_ERR_STORAGE_BAD_GATEWAY', detail);
}

/**
 * A pull-based read of `[start, end]`: `next()` resolves to the next chunk (advancing `pos`)
 * or undefined at the end; `unshift()` gives back the unread tail of the last chunk, so a
 * caller can stop at any offset and another caller can continue from there on the same body.
 * One owner at a time; `destroy()` aborts the GET in flight and its body at once (idempotent).
 */
export class ReadSession {
  /** Offset of the next byte `next()` returns. */
  #pos: number;
  readonly #options: ReadSessionOptions;
  readonly #ac = new AbortController();
  #body: Readable | undefined;
  #iterator: AsyncIterator<Buffer> | undefined;
  #pending: Buffer | undefined;
  #failures = 0;
  /** Continuations done (all of them, for logs and tests). */
  resumes = 0;

  constructor(options: ReadSessionOptions) {
    this.#options = options;
    this.#pos = options.start;
  }

  get pos(): number { return this.#pos; }
  get end(): number { return this.#options.end; }
  get destroyed(): boolean { return this.#ac.signal.aborted; }

  /** Gives back the unread tail of the last chunk: the next `next()` returns it first. */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#pending !== undefined) throw new Error('ReadSession.unshift: one chunk at a time');
    this.#pending = chunk;
    this.#pos -= chunk.length;
  }

  /** The next chunk of the range, or undefined once `end` was returned. */
  async next(): Promise<Buffer | undefined> {
    const signal = this.#ac.signal;
    if (this.#pending !== undefined) {
      const chunk = this.#pending;
      this.#pending = undefined;
      this.#pos += chunk.length;
      return chunk;
    }
    const { end, idleTimeoutMs } = this.#options;
    for (;;) {
      signal.throwIfAborted();
      if (this.#pos > end) return undefined;
      if (this.#iterator === undefined) await this.#open();
      const body = this.#body!;
      // The idle clock runs only while Ferry waits for the store, never while the client is slow.
      const timer = setTimeout(() => { body.destroy(new BodyStalled(idleTimeoutMs)); }, idleTimeoutMs);
      try {
        const r = await this.#iterator!.next();
        if (r.done === true) throw new BodyEndedEarly();
        const chunk = r.value;
        if (this.#pos + chunk.length - 1 > end) throw badGateway('the object store sent more bytes than the range holds');
        this.#pos += chunk.length;
        this.#failures = 0;
        return chunk;
      } catch (err) {
        this.#drop();
        if (signal.aborted) throw signal.reason;
        if (!isBrokenBody(err)) throw this.#options.mapError(err, signal);
        this.#failures += 1;
        if (this.#failures > this.#options.maxResumes) {
          const why = err instanceof Error ? err.message : String(err);
          throw unavailable(`the object store's answer broke ${this.#failures} times at byte ${this.#pos} (${why})`, err);
        }
        this.resumes += 1;
        await delay(resumeDelayMs(this.#failures, (this.#options.random ?? Math.random)()), undefined, { signal });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** A ranged GET from the current offset, checked: same version, the range asked for. */
  async #open(): Promise<void> {
    const { end, size, etag, get, mapError } = this.#options;
    const signal = this.#ac.signal;
    let answer: RangeAnswer;
    try {
      answer = await get(`bytes=${this.#pos}-${end}`, signal);
    } catch (err) {
      throw mapError(err, signal);
    }
    if (signal.aborted) {
      answer.body.destroy();
      throw signal.reason;
    }
    // A store that ignored If-Match or the range must not reach the client as if it had not.
    if (etag !== undefined && answer.etag !== undefined && answer.etag !== etag) {
      answer.body.destroy();
      throw new FerryError('FERRY_ERR_STORAGE_CHANGED', 'The object changed while it was being read');
    }
    const expected = `bytes ${this.#pos}-${end}/${size}`;
    if (answer.contentRange !== undefined && answer.contentRange !== expected) {
      answer.body.destroy();
      throw badGateway(`the object store answered ${answer.contentRange} for ${expected}`);
    }
    this.#body = answer.body;
    this.#iterator = (answer.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Destroys the current body (its socket is not reused: the SDK leaves unread bodies holding it). */
  #drop(): void {
    this.#body?.destroy();
    this.#body = undefined;
    this.#iterator = undefined;
  }

  /** Aborts the GET in flight and destroys its body. Idempotent. */
  destroy(): void {
    if (!this.#ac.signal.aborted) this.#ac.abort();
    this.#pending = undefined;
    this.#drop();
  }
}
