/**
 * The download engine behind `ferry get` (and, later, server-side download tasks): probe,
 * segmented ranged fetches on one undici pool per origin with work stealing, positional writes
 * into `<name>.part`, per-piece CRC-32, an atomic resume state in `<name>.part.json`, retries
 * with backoff, and verification before the final rename. No CLI code: callers get a promise,
 * events and an AbortSignal.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { Dispatcher } from 'undici';
import { sleep } from '../core/abort.ts';
import { FerryError } from '../core/errors.ts';
import { parseContentRange } from './content-range.ts';
import type { TransferEvent } from './events.ts';
import { SpeedMeter } from './events.ts';
import { createAgent, createRequestIdentity, headersFor, headerValue, redactUrl, send, type ClientResponse, type RequestIdentity } from './http-client.ts';
import { FastHttpPool } from './fast-http.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { createBufferPool, PieceWriter, WriteFailure, type BufferPool } from './piece-writer.ts';
import { probe, type ProbeResult } from './probe.ts';
import { createTokenBucket, unlimited, type RateLimiter } from './rate-limiter.ts';
import { changedError, isCode, judgeFailure, localIoError, remoteStatusError, RemoteStatusError } from './remote-errors.ts';
import { parseRetryAfter } from './retry-after.ts';
import { crcHex, readResumeState, writeResumeState, STATE_FORMAT, STATE_VERSION, type ResumeState } from './resume-state.ts';
import { backoffDelayMs } from './retry-policy.ts';
import { chooseSteal, choosePieceSize, MAX_SEGMENTS, MIB, missingRanges, pieceCount, planSegments } from './segment-plan.ts';
import { describeChange, type RemoteIdentity } from './validators.ts';

export interface DownloadOptions {
  readonly url: string | URL;
  /** Final path (the partial file is `<output>.part`, the state `<output>.part.json`), or a stream (single stream, no resume state). */
  readonly output: string | Writable;
  /** Parallel ranged connections, 1..16. Default 4. */
  readonly segments?: number;
  /** Smallest segment worth its own request (and smallest stolen half). Default 1 MiB. */
  readonly minSegmentBytes?: number;
  /** Expected sha-256 (hex); otherwise the server's Repr-Digest when it sends one. */
  readonly sha256?: string;
  /** Extra request headers (`--header`); credentials among them never cross origins. */
  readonly headers?: readonly (readonly [string, string])[];
  readonly limitRateBytesPerSec?: number;
  /** Consecutive failed attempts (without progress) a segment may make before giving up. Default 10. */
  readonly retries?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Longest `Retry-After` honoured; longer ones are shortened to this. Default 5 min. */
  readonly maxRetryAfterMs?: number;
  /** No byte for this long → the attempt fails (and is retried). Default 30 s. */
  readonly idleTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly maxRedirects?: number;
  /** When the file changes on the server: start again from zero (default) or fail. */
  readonly restartOnChange?: boolean;
  readonly maxRestarts?: number;
  /** On a digest mismatch keep `<output>.part` for inspection (default: remove it). */
  readonly keepPartOnMismatch?: boolean;
  readonly checkpointIntervalMs?: number;
  readonly checkpointBytes?: number;
  readonly progressIntervalMs?: number;
  /** fsync the file before the rename (durable against power loss; slower). */
  readonly fsync?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: TransferEvent) => void;
  /** Share a dispatcher (otherwise one Agent per download, closed at the end). */
  readonly dispatcher?: Dispatcher;
  /**
   * Client for ranged segment requests over http: `fast` (default: a lean HTTP/1.1 reader,
   * see fast-http.ts) or `undici` (everything through undici). https always uses undici.
   */
  readonly segmentTransport?: 'fast' | 'undici';
  /** Write on the event-loop thread (see PieceWriterOptions.syncWrites): the CLI's choice; default false. */
  readonly syncWrites?: boolean;
}

export interface DownloadResult {
  readonly output: string;
  readonly sizeBytes: number;
  /** The verified digest, when one was expected. */
  readonly sha256: string | null;
  readonly resumedBytes: number;
  readonly networkBytes: number;
  readonly restarts: number;
  readonly durationMs: number;
}

interface Resolved {
  readonly url: URL;
  readonly identity: RequestIdentity;
  readonly output: string | Writable;
  readonly segments: number;
  readonly minSegmentBytes: number;
  readonly sha256: string | undefined;
  readonly limiter: RateLimiter;
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly maxRetryAfterMs: number;
  readonly maxRedirects: number;
  readonly restartOnChange: boolean;
  readonly maxRestarts: number;
  readonly keepPartOnMismatch: boolean;
  readonly checkpointIntervalMs: number;
  readonly checkpointBytes: number;
  readonly progressIntervalMs: number;
  readonly fsync: boolean;
  readonly signal: AbortSignal;
  readonly onEvent: (event: TransferEvent) => void;
  readonly dispatcher: Dispatcher;
  readonly fast: FastHttpPool | undefined;
  readonly buffers: BufferPool;
  readonly syncWrites: boolean;
}

/** One unit of work: fetch [writtenPos, end) into the partial file. */
interface Task {
  writtenPos: number;
  end: number;
  /** CRC-32 of the current piece's bytes before writtenPos. */
  crc: number;
  failures: number;
  writer: PieceWriter | undefined;
}

/**
 * Downloads `options.url` to `options.output`. Resolves when the file is complete, verified
 * and renamed into place; rejects with a FerryError (see docs/cli.md for codes).
 */
export async function download(options: DownloadOptions): Promise<DownloadResult> {
  const url = parseHttpUrl(options.url);
  const segments = options.segments ?? 4;
  if (!Number.isInteger(segments) || segments < 1 || segments > MAX_SEGMENTS) {
    throw new FerryError('FERRY_ERR_BAD_REQUEST', `segments must be an integer from 1 to ${MAX_SEGMENTS}`);
  }
  const sha256 = options.sha256?.toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new FerryError('FERRY_ERR_BAD_REQUEST', 'sha256 must be 64 hex digits');
  const { url: cleanUrl, identity } = createRequestIdentity(url, options.headers ?? []);
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  const ownAgent = options.dispatcher === undefined
    ? createAgent({ connections: segments + 1, connectTimeoutMs: options.connectTimeoutMs ?? 10_000, idleTimeoutMs })
    : undefined;
  const fast = options.segmentTransport === 'undici' ? undefined
    : new FastHttpPool({ connectTimeoutMs: options.connectTimeoutMs ?? 10_000, idleTimeoutMs });
  const resolved: Resolved = {
    url: cleanUrl,
    identity,
    output: options.output,
    segments,
    minSegmentBytes: Math.max(64 * 1024, options.minSegmentBytes ?? MIB),
    sha256,
    limiter: options.limitRateBytesPerSec !== undefined && options.limitRateBytesPerSec > 0 ? createTokenBucket({ rateBytesPerSec: options.limitRateBytesPerSec }) : unlimited,
    retries: options.retries ?? 10,
    retryBaseMs: options.retryBaseMs ?? 500,
    retryMaxMs: options.retryMaxMs ?? 30_000,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 300_000,
    maxRedirects: options.maxRedirects ?? 10,
    restartOnChange: options.restartOnChange ?? true,
    maxRestarts: options.maxRestarts ?? 3,
    keepPartOnMismatch: options.keepPartOnMismatch ?? false,
    checkpointIntervalMs: options.checkpointIntervalMs ?? 1000,
    checkpointBytes: options.checkpointBytes ?? 4 * MIB,
    progressIntervalMs: options.progressIntervalMs ?? 500,
    fsync: options.fsync ?? false,
    signal: options.signal ?? new AbortController().signal,
    onEvent: options.onEvent ?? (() => {}),
    dispatcher: options.dispatcher ?? ownAgent!,
    fast,
    buffers: createBufferPool(),
    syncWrites: options.syncWrites ?? false,
  };
  try {
    return await new Download(resolved).run();
  } finally {
    fast?.close();
    // destroy, not close: a stolen segment may have left a response half-read.
    await ownAgent?.destroy().catch(() => {});
  }
}

function parseHttpUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(typeof input === 'string' ? input : input.href);
  } catch {
    throw new FerryError('FERRY_ERR_CLIENT_BAD_URL', `not a URL: ${JSON.stringify(String(input))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FerryError('FERRY_ERR_CLIENT_BAD_URL', `unsupported scheme ${url.protocol} (http and https only)`);
  url.hash = '';
  return url;
}

class Download {
  readonly #o: Resolved;
  readonly #startedAt = performance.now();
  readonly #partPath: string | undefined;
  readonly #statePath: string | undefined;
  #networkBytes = 0;
  #restarts = 0;

  constructor(o: Resolved) {
    this.#o = o;
    if (typeof o.output === 'string') {
      this.#partPath = `${o.output}.part`;
      this.#statePath = `${o.output}.part.json`;
    }
  }

  #emit(event: TransferEvent): void {
    try {
      this.#o.onEvent(event);
    } catch {
      // A listener's bug must not break the transfer.
    }
  }

  async run(): Promise<DownloadResult> {
    for (;;) {
      try {
        return await this.#once();
      } catch (err) {
        if (isCode(err, 'FERRY_ERR_DOWNLOAD_CHANGED') && this.#o.restartOnChange && this.#restarts < this.#o.maxRestarts && !this.#o.signal.aborted) {
          this.#restarts++;
          this.#emit({ type: 'restart', reason: `${(err as Error).message}; starting again from zero so that no file mixes two versions` });
          await this.#removeLeftovers();
          continue;
        }
        if (isCode(err, 'FERRY_ERR_DOWNLOAD_CHANGED') && this.#o.restartOnChange && this.#restarts >= this.#o.maxRestarts) {
          throw new FerryError('FERRY_ERR_DOWNLOAD_CHANGED', `${(err as Error).message}; gave up after ${this.#restarts} restarts`, { cause: err });
        }
        throw this.#o.signal.aborted && !isCode(err, 'FERRY_ERR_CLIENT_ABORTED') ? this.#abortError(err) : err;
      }
    }
  }

  async #removeLeftovers(): Promise<void> {
    if (this.#partPath !== undefined) await rm(this.#partPath, { force: true });
    if (this.#statePath !== undefined) await rm(this.#statePath, { force: true });
  }

  #abortError(cause: unknown): FerryError {
    const keep = this.#statePath === undefined ? '' : `; progress is kept in ${this.#statePath}, run the same command again to continue`;
    return new FerryError('FERRY_ERR_CLIENT_ABORTED', `download interrupted${keep}`, { cause });
  }

  async #once(): Promise<DownloadResult> {
    const saved = await this.#loadState();
    const p = await this.#retrying(0, () => probe({ dispatcher: this.#o.dispatcher, url: this.#o.url, identity: this.#o.identity, maxRedirects: this.#o.maxRedirects, signal: this.#o.signal }));
    const expected = this.#o.sha256 !== undefined ? { hex: this.#o.sha256, source: 'option' as const }
      : p.reprSha256 !== undefined ? { hex: p.reprSha256, source: 'repr-digest' as const } : undefined;
    const size = p.remote.sizeBytes;
    if (typeof this.#o.output !== 'string') return await this.#toStream(this.#o.output, p, expected);
    if (p.ranges && size !== undefined && size > 0) {
      p.body?.destroy();
      return await this.#segmented(p, size, saved, expected);
    }
    if (saved !== undefined) await rm(this.#statePath!, { force: true });
    return await this.#single(p, expected);
  }

  async #loadState(): Promise<ResumeState | undefined> {
    if (this.#statePath === undefined) return undefined;
    let r;
    try {
      r = await readResumeState(this.#statePath);
    } catch (err) {
      this.#emit({ type: 'warning', message: `cannot read ${this.#statePath} (${(err as Error).message}); starting from zero` });
      return undefined;
    }
    if (r === undefined) return undefined;
    if (!r.ok) {
      this.#emit({ type: 'warning', message: `ignoring ${this.#statePath}: ${r.reason}; starting from zero` });
      return undefined;
    }
    return r.state;
  }

  /** Runs one request-shaped step with the retry policy (used for the probe). */
  async #retrying<T>(offset: number, step: () => Promise<T>): Promise<T> {
    let failures = 0;
    for (;;) {
      try {
        return await step();
      } catch (err) {
        if (this.#o.signal.aborted) throw this.#abortError(err);
        const verdict = judgeFailure(err);
        if (!verdict.retry) throw err;
        failures++;
        if (failures > this.#o.retries) throw this.#exhausted(failures, verdict.reason, err);
        const delayMs = this.#delay(failures, verdict.retryAfterMs);
        this.#emit({ type: 'retry', attempt: failures, delayMs, reason: verdict.reason, offset });
        await sleep(delayMs, this.#o.signal).catch((e: unknown) => { throw this.#abortError(e); });
      }
    }
  }

  #delay(failures: number, retryAfterMs: number | undefined): number {
    const ra = retryAfterMs === undefined ? undefined : Math.min(retryAfterMs, this.#o.maxRetryAfterMs);
    return backoffDelayMs(failures, { baseMs: this.#o.retryBaseMs, maxMs: this.#o.retryMaxMs }, ra, Math.random());
  }

  #exhausted(failures: number, reason: string, cause: unknown): FerryError {
    return new FerryError('FERRY_ERR_CLIENT_RETRIES_EXHAUSTED', `gave up after ${failures} failed attempts in a row; last: ${reason}`, { cause });
  }

  /** Decides whether a saved state can continue this download; returns why not, or undefined. */
  #whyNotResume(saved: ResumeState, p: ProbeResult, size: number): { reason: string; changed: boolean } | undefined {
    if (saved.url !== this.#o.url.href) return { reason: `${this.#statePath} belongs to another URL (${redactUrl(saved.url)})`, changed: false };
    if (!saved.ranges || saved.sizeBytes === null) return { reason: 'the previous run could not be resumed (no ranges or no size)', changed: false };
    if (saved.etag === null && saved.lastModified === null) return { reason: 'the server offers no ETag or Last-Modified to prove the file did not change since the last run', changed: false };
    const before: RemoteIdentity = { sizeBytes: saved.sizeBytes, etag: saved.etag ?? undefined, lastModified: saved.lastModified ?? undefined };
    const change = describeChange(before, { ...p.remote, sizeBytes: size })
      ?? (saved.etag !== null && p.remote.etag === undefined ? 'the server no longer sends its ETag' : undefined);
    if (change !== undefined) return { reason: `the file changed on the server since the last run (${change})`, changed: true };
    return undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Segmented mode: ranges and a known size.

  async #segmented(p: ProbeResult, size: number, saved: ResumeState | undefined, expected: { hex: string; source: 'option' | 'repr-digest' } | undefined): Promise<DownloadResult> {
    const o = this.#o;
    const partPath = this.#partPath!;
    const statePath = this.#statePath!;
    let resume = saved;
    if (saved !== undefined) {
      const why = this.#whyNotResume(saved, p, size);
      if (why !== undefined) {
        if (why.changed && !o.restartOnChange) throw changedError(`${why.reason}; not starting again because of --no-restart`);
        this.#emit({ type: 'restart', reason: `${why.reason}; starting again from zero` });
        resume = undefined;
        await rm(statePath, { force: true });
      }
    }
    if (p.ifRange === undefined) {
      this.#emit({ type: 'warning', message: 'the server sends no strong validator (ETag or a Last-Modified date), so a change of the file during the download can only be caught by its size' });
    }
    const pieceBytes = resume?.pieceBytes ?? choosePieceSize(size);
    const minSegmentBytes = Math.max(o.minSegmentBytes, pieceBytes);
    const n = pieceCount(size, pieceBytes);
    const crcs: (number | undefined)[] = new Array<number | undefined>(n).fill(undefined);
    const partial = new Map<number, { bytes: number; crc: number }>();
    const identity: RemoteIdentity = { sizeBytes: size, etag: p.remote.etag, lastModified: p.remote.lastModified };
    const createdAt = resume?.createdAt ?? new Date().toISOString();

    let fh: FileHandle;
    try {
      fh = resume !== undefined ? await open(partPath, 'r+').catch(async (err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        return open(partPath, 'w+');
      }) : await open(partPath, 'w+');
    } catch (err) {
      throw localIoError(err, partPath, undefined);
    }
    let resumedBytes = 0;
    try {
      if (resume !== undefined) resumedBytes = await this.#verifyOnDisk(fh, resume, size, crcs, partial);
      try {
        await fh.truncate(size);
      } catch (err) {
        throw localIoError(err, partPath, statePath);
      }

      const tasks = new Set<Task>();
      const snapshot = (): ResumeState => {
        const part: { piece: number; bytes: number; crc32: string }[] = [];
        for (const t of tasks) {
          const inPiece = t.writtenPos % pieceBytes;
          if (inPiece !== 0 && t.writtenPos < t.end) part.push({ piece: Math.floor(t.writtenPos / pieceBytes), bytes: inPiece, crc32: crcHex(t.crc) });
        }
        return {
          format: STATE_FORMAT, version: STATE_VERSION, url: o.url.href, finalUrl: p.finalUrl.href, sizeBytes: size,
          etag: p.remote.etag ?? null, lastModified: p.remote.lastModified ?? null, ranges: true, sha256: expected?.hex ?? null,
          pieceBytes, pieces: crcs.map((c) => (c === undefined ? null : crcHex(c))), partial: part.sort((a, b) => a.piece - b.piece),
          createdAt, updatedAt: new Date().toISOString(),
        };
      };
      const checkpoint = createCheckpointer(statePath, snapshot, (err) => {
        this.#emit({ type: 'warning', message: `cannot save the resume state ${statePath}: ${(err as Error).message}` });
      });
      await checkpoint.now();

      const gaps = missingRanges(size, pieceBytes, crcs.map((c) => c !== undefined), new Map([...partial].map(([i, v]) => [i, v.bytes])));
      let doneBytes = size - gaps.reduce((sum, g) => sum + (g.end - g.start), 0);
      const pending: Task[] = planSegments(gaps, o.segments, pieceBytes, minSegmentBytes, size).map((r) => ({
        writtenPos: r.start,
        end: r.end,
        crc: r.start % pieceBytes === 0 ? 0 : partial.get(Math.floor(r.start / pieceBytes))?.crc ?? 0,
        failures: 0,
        writer: undefined,
      }));
      for (const t of pending) tasks.add(t);
      const active = new Set<Task>();

      this.#emit({
        type: 'start', url: redactUrl(o.url), finalUrl: redactUrl(p.finalUrl), output: o.output as string, sizeBytes: size,
        mode: 'segmented', segments: o.segments, resumedBytes: doneBytes, validator: p.ifRange ?? null,
      });

      const runCtl = new AbortController();
      const onOuterAbort = (): void => { runCtl.abort(o.signal.reason); };
      o.signal.addEventListener('abort', onOuterAbort, { once: true });
      if (o.signal.aborted) runCtl.abort(o.signal.reason);
      let failure: unknown;
      let sinceCheckpoint = 0;
      const stopTimers = this.#startTimers(() => doneBytes, size, () => { let c = 0; for (const t of active) if (t.writer !== undefined) c++; return c; }, () => {
        if (sinceCheckpoint > 0) { sinceCheckpoint = 0; checkpoint.request(); }
      });

      const ctx: SegmentContext = {
        fh, p, size, pieceBytes, identity, signal: runCtl.signal,
        onWritten: (task, writtenEnd, bytes, crc, completes) => {
          task.writtenPos = writtenEnd;
          task.crc = completes ? 0 : crc;
          if (completes) crcs[Math.floor((writtenEnd - 1) / pieceBytes)] = crc;
          doneBytes += bytes;
          sinceCheckpoint += bytes;
          if (sinceCheckpoint >= o.checkpointBytes) { sinceCheckpoint = 0; checkpoint.request(); }
        },
      };

      const worker = async (): Promise<void> => {
        for (;;) {
          if (runCtl.signal.aborted) return;
          let task = pending.shift();
          if (task === undefined) {
            const list = [...active];
            const steal = chooseSteal(list.map((t) => ({ receivedPos: t.writer?.receivedPos ?? t.writtenPos, end: t.end })), pieceBytes, minSegmentBytes, size);
            if (steal === undefined) return;
            const victim = list[steal.index]!;
            task = { writtenPos: steal.split, end: victim.end, crc: 0, failures: 0, writer: undefined };
            victim.end = steal.split;
            tasks.add(task);
          }
          active.add(task);
          try {
            await this.#runTask(task, ctx);
            tasks.delete(task);
          } catch (err) {
            if (failure === undefined && !runCtl.signal.aborted) failure = err;
            runCtl.abort(err);
            return;
          } finally {
            active.delete(task);
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: o.segments }, worker));
      } finally {
        o.signal.removeEventListener('abort', onOuterAbort);
        stopTimers();
        await checkpoint.now();
      }
      if (failure !== undefined) throw failure instanceof WriteFailure ? localIoError(failure.cause, partPath, statePath) : failure;
      if (o.signal.aborted) throw this.#abortError(o.signal.reason);
      const missing = crcs.findIndex((c) => c === undefined);
      if (missing !== -1) throw new FerryError('FERRY_ERR_INTERNAL', `piece ${missing} was never completed`);

      return await this.#finish(fh, size, resumedBytes, expected, async () => {
        if (expected === undefined) return undefined;
        return await hashFile(fh, size, o.signal);
      });
    } finally {
      await fh.close().catch(() => {});
    }
  }

  /** Re-reads what the state says is on disk and keeps only pieces whose CRC-32 still matches. */
  async #verifyOnDisk(fh: FileHandle, saved: ResumeState, size: number, crcs: (number | undefined)[], partial: Map<number, { bytes: number; crc: number }>): Promise<number> {
    const pieceBytes = saved.pieceBytes;
    const buf = Buffer.allocUnsafe(pieceBytes);
    let verified = 0;
    let discarded = 0;
    const check = async (pos: number, length: number, expectedHex: string): Promise<number | undefined> => {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got < length) return undefined;
      const crc = crc32(buf.subarray(0, length));
      return crcHex(crc) === expectedHex ? crc : undefined;
    };
    for (let i = 0; i < saved.pieces.length; i++) {
      if (this.#o.signal.aborted) throw this.#abortError(this.#o.signal.reason);
      const hex = saved.pieces[i];
      if (hex === null || hex === undefined) continue;
      const start = i * pieceBytes;
      const length = Math.min(pieceBytes, size - start);
      const crc = await check(start, length, hex);
      if (crc === undefined) discarded += length;
      else { crcs[i] = crc; verified += length; }
    }
    for (const part of saved.partial) {
      const crc = await check(part.piece * pieceBytes, part.bytes, part.crc32);
      if (crc === undefined) discarded += part.bytes;
      else { partial.set(part.piece, { bytes: part.bytes, crc }); verified += part.bytes; }
    }
    this.#emit({ type: 'resume', verifiedBytes: verified, discardedBytes: discarded });
    return verified;
  }

  async #runTask(task: Task, ctx: SegmentContext): Promise<void> {
    while (task.writtenPos < task.end) {
      const before = task.writtenPos;
      try {
        await this.#fetchRange(task, ctx);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        const verdict = judgeFailure(err);
        if (!verdict.retry) throw err;
        // An attempt that moved the download forward is free; the budget counts attempts in a
        // row that got nowhere, so a long download over a flaky link is not capped.
        const progressed = task.writtenPos > before;
        task.failures = progressed ? 0 : task.failures + 1;
        if (task.failures > this.#o.retries) throw this.#exhausted(task.failures, verdict.reason, err);
        const delayMs = task.failures === 0 ? 0 : this.#delay(task.failures, verdict.retryAfterMs);
        this.#emit({ type: 'retry', attempt: task.failures, delayMs, reason: verdict.reason, offset: task.writtenPos });
        if (delayMs > 0) await sleep(delayMs, ctx.signal);
      }
    }
  }

  async #fetchRange(task: Task, ctx: SegmentContext): Promise<void> {
    const from = task.writtenPos;
    const to = task.end;
    const headers: Record<string, string> = { range: `bytes=${from}-${to - 1}` };
    // RFC 9110 §13.1.5: "If-Range … if the representation is unchanged, send me the part(s)
    // that I am requesting in Range; otherwise, send me the entire representation": a 200 here
    // means the file changed, and no byte of it is mixed into ours.
    if (ctx.p.ifRange !== undefined) headers['if-range'] = ctx.p.ifRange;
    const writer = new PieceWriter({
      fh: ctx.fh, startPos: from, crcSeed: task.crc, pieceBytes: ctx.pieceBytes, sizeBytes: ctx.size, end: () => task.end,
      onWritten: (writtenEnd, bytes, crc, completes) => { ctx.onWritten(task, writtenEnd, bytes, crc, completes); },
      buffers: this.#o.buffers,
      syncWrites: this.#o.syncWrites,
    });
    task.writer = writer;
    try {
      if (this.#o.fast !== undefined && ctx.p.finalUrl.protocol === 'http:' && await this.#fetchRangeFast(writer, from, to, headers, ctx)) {
        // done on the fast path
      } else {
        await this.#fetchRangeUndici(writer, from, to, headers, ctx);
      }
      await writer.finish();
    } catch (err) {
      await writer.settle();
      throw err;
    } finally {
      task.writer = undefined;
    }
    if (task.writtenPos < Math.min(to, task.end)) {
      throw new FerryError('FERRY_ERR_CLIENT_SHORT_BODY', `the response ended after ${task.writtenPos - from} of ${to - from} bytes`);
    }
  }

  /** @returns false when the response is not for the fast path (redirect, no Content-Length): the caller asks again through undici. */
  async #fetchRangeFast(writer: PieceWriter, from: number, to: number, extra: Record<string, string>, ctx: SegmentContext): Promise<boolean> {
    const url = ctx.p.finalUrl;
    const res = await this.#o.fast!.get(url, headersFor(this.#o.identity, url, { 'accept-encoding': 'identity', ...extra }), ctx.signal);
    let piping = false;
    try {
      if (res.status >= 300 && res.status < 400) return false;
      checkPartialResponse(res, from, to, ctx.identity, extra['if-range'] !== undefined);
      if (res.status !== 206) throw new RemoteStatusErrorFromHead(res.status, url, res.headers);
      if (res.contentLength === undefined) return false;
      if (res.contentLength !== to - from) throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `a 206 for ${to - from} bytes with Content-Length ${res.contentLength}`);
      piping = true;
      const limiter = this.#o.limiter;
      try {
        await res.pipe((buf, off, len) => writer.offer(buf, off, len), () => writer.drained(), limiter === unlimited ? undefined : (n) => limiter.reserve(n));
      } finally {
        this.#networkBytes += res.bodyBytes;
      }
      return true;
    } finally {
      if (!piping) res.abandon();
    }
  }

  async #fetchRangeUndici(writer: PieceWriter, from: number, to: number, extra: Record<string, string>, ctx: SegmentContext): Promise<void> {
    const res = await send({ dispatcher: this.#o.dispatcher, url: ctx.p.finalUrl, identity: this.#o.identity, headers: extra, maxRedirects: this.#o.maxRedirects, signal: ctx.signal });
    try {
      checkPartialResponse(res, from, to, ctx.identity, extra['if-range'] !== undefined);
    } catch (err) {
      res.body.destroy();
      throw err;
    }
    if (res.status !== 206) throw await remoteStatusError(res.status, res.url, res.headers, res.body);
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        this.#networkBytes += chunk.length;
        const more = await writer.push(chunk);
        await this.#o.limiter.take(chunk.length, ctx.signal);
        if (!more) break;
      }
    } finally {
      if (!res.body.destroyed) res.body.destroy();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Single stream: no ranges, or no size. Resumable within the run only when ranges work.

  async #single(p: ProbeResult, expected: { hex: string; source: 'option' | 'repr-digest' } | undefined): Promise<DownloadResult> {
    const o = this.#o;
    const partPath = this.#partPath!;
    const size = p.remote.sizeBytes;
    let fh: FileHandle;
    try {
      fh = await open(partPath, 'w+');
    } catch (err) {
      p.body?.destroy();
      throw localIoError(err, partPath, undefined);
    }
    this.#emit({
      type: 'start', url: redactUrl(o.url), finalUrl: redactUrl(p.finalUrl), output: o.output as string, sizeBytes: size ?? null,
      mode: 'single', segments: 1, resumedBytes: 0, validator: p.ifRange ?? null,
    });
    if (!p.ranges && size !== 0) this.#emit({ type: 'warning', message: 'the server does not support ranges: one connection, and a dropped connection starts the file again' });
    let doneBytes = 0;
    let connected = 0;
    const stopTimers = this.#startTimers(() => doneBytes, size, () => connected, () => {});
    try {
      const sha = await this.#sequential(p, size, doneBytesSetter, expected !== undefined, { fh });
      return await this.#finish(fh, doneBytes, 0, expected, () => Promise.resolve(sha));
    } catch (err) {
      throw err instanceof WriteFailure ? localIoError(err.cause, partPath, undefined) : err;
    } finally {
      stopTimers();
      await fh.close().catch(() => {});
    }

    function doneBytesSetter(bytes: number, conn: number): void {
      doneBytes = bytes;
      connected = conn;
    }
  }

  /**
   * Fetches the representation front to back into `fh` (or a stream), retrying: from the
   * current offset with `Range` + `If-Range` when the server does ranges, else from zero.
   * @returns the sha-256 hex of what was written when `wantHash`.
   */
  async #sequential(p: ProbeResult, size: number | undefined, report: (doneBytes: number, connections: number) => void, wantHash: boolean, target: { fh: FileHandle } | { stream: Writable }): Promise<string | undefined> {
    const o = this.#o;
    const fh = 'fh' in target ? target.fh : undefined;
    const stream = 'stream' in target ? target.stream : undefined;
    const pieceBytes = MIB;
    let hash = wantHash ? createHash('sha256') : undefined;
    let pos = 0;
    let crc = 0;
    let failures = 0;
    let body = p.body;
    let bodyStart = 0;
    for (;;) {
      const before = pos;
      let writer: PieceWriter | undefined;
      try {
        if (body === undefined) {
          const headers: Record<string, string> = {};
          if (p.ranges && pos > 0) {
            headers.range = size !== undefined ? `bytes=${pos}-${size - 1}` : `bytes=${pos}-`;
            if (p.ifRange !== undefined) headers['if-range'] = p.ifRange;
          }
          const res = await send({ dispatcher: o.dispatcher, url: p.finalUrl, identity: o.identity, headers, maxRedirects: o.maxRedirects, signal: o.signal });
          if (res.status === 206 && pos > 0) {
            checkPartialResponse(res, pos, size, { sizeBytes: size, etag: p.remote.etag, lastModified: p.remote.lastModified }, p.ifRange !== undefined);
            bodyStart = pos;
          } else if (res.status === 200) {
            if (pos > 0 && p.ranges) {
              res.body.destroy();
              throw changedError('the server sent the whole file where a range of it was asked for: it changed');
            }
            const change = describeChange(p.remote, { sizeBytes: contentLength(res), etag: headerValue(res.headers, 'etag'), lastModified: headerValue(res.headers, 'last-modified') });
            if (change !== undefined) {
              res.body.destroy();
              throw changedError(`the file changed on the server (${change})`);
            }
            if (pos > 0) {
              // No ranges: all that was written is useless now. Start the file again.
              if (stream !== undefined) {
                res.body.destroy();
                throw new FerryError('FERRY_ERR_CLIENT_RETRIES_EXHAUSTED', 'the connection dropped and the server does not support ranges, so output to a stream cannot continue');
              }
              pos = 0;
              crc = 0;
              hash = wantHash ? createHash('sha256') : undefined;
              await fh!.truncate(0);
              report(0, 1);
            }
            bodyStart = 0;
          } else {
            throw await remoteStatusError(res.status, res.url, res.headers, res.body);
          }
          body = res.body;
        }
        report(pos, 1);
        const current = body;
        body = undefined;
        const end = size ?? Number.MAX_SAFE_INTEGER;
        if (stream !== undefined) {
          let at = bodyStart;
          for await (const chunk of current as AsyncIterable<Buffer>) {
            this.#networkBytes += chunk.length;
            const take = at + chunk.length > end ? chunk.subarray(0, end - at) : chunk;
            hash?.update(take);
            if (!stream.write(take)) await once(stream, 'drain', { signal: o.signal });
            at += take.length;
            pos = at;
            report(pos, 1);
            await o.limiter.take(chunk.length, o.signal);
            if (at >= end) break;
          }
          if (!current.destroyed) current.destroy();
        } else {
          writer = new PieceWriter({
            fh: fh!, startPos: pos, crcSeed: crc, pieceBytes, sizeBytes: size, end: () => end, hash, buffers: o.buffers, syncWrites: o.syncWrites,
            onWritten: (writtenEnd, _bytes, c, completes) => { pos = writtenEnd; crc = completes ? 0 : c; report(pos, 1); },
          });
          try {
            for await (const chunk of current as AsyncIterable<Buffer>) {
              this.#networkBytes += chunk.length;
              const more = await writer.push(chunk);
              await o.limiter.take(chunk.length, o.signal);
              if (!more) break;
            }
            await writer.finish(true);
          } finally {
            if (!current.destroyed) current.destroy();
          }
        }
        if (size !== undefined && pos < size) {
          throw new FerryError('FERRY_ERR_CLIENT_SHORT_BODY', `the response ended after ${pos} of ${size} bytes`);
        }
        report(pos, 0);
        return hash?.digest('hex');
      } catch (err) {
        body?.destroy();
        body = undefined;
        if (writer !== undefined) await writer.settle();
        if (o.signal.aborted) throw this.#abortError(err);
        const verdict = judgeFailure(err);
        if (!verdict.retry) throw err;
        failures = pos > before ? 0 : failures + 1;
        if (failures > o.retries) throw this.#exhausted(failures, verdict.reason, err);
        const delayMs = failures === 0 ? 0 : this.#delay(failures, verdict.retryAfterMs);
        this.#emit({ type: 'retry', attempt: failures, delayMs, reason: verdict.reason, offset: pos });
        if (delayMs > 0) await sleep(delayMs, o.signal).catch((e: unknown) => { throw this.#abortError(e); });
      }
    }
  }

  async #toStream(stream: Writable, p: ProbeResult, expected: { hex: string; source: 'option' | 'repr-digest' } | undefined): Promise<DownloadResult> {
    const o = this.#o;
    const size = p.remote.sizeBytes;
    this.#emit({
      type: 'start', url: redactUrl(o.url), finalUrl: redactUrl(p.finalUrl), output: '-', sizeBytes: size ?? null,
      mode: 'single', segments: 1, resumedBytes: 0, validator: p.ifRange ?? null,
    });
    let doneBytes = 0;
    let connected = 0;
    const stopTimers = this.#startTimers(() => doneBytes, size, () => connected, () => {});
    let streamError: unknown;
    const onError = (err: unknown): void => { streamError = err; };
    stream.on('error', onError);
    try {
      let sha: string | undefined;
      if (size === 0 && p.ranges) {
        sha = createHash('sha256').digest('hex');
      } else {
        // After a 206 probe (it carried only byte 0) the first request fetches from 0, no Range.
        sha = await this.#sequential(p, size, (b, c) => { doneBytes = b; connected = c; }, expected !== undefined, { stream });
      }
      if (streamError !== undefined) throw streamError;
      const r = this.#verifyDigest(sha, expected);
      const durationMs = Math.round(performance.now() - this.#startedAt);
      this.#emit({ type: 'done', output: '-', sizeBytes: doneBytes, durationMs, networkBytes: this.#networkBytes, sha256: r });
      return { output: '-', sizeBytes: doneBytes, sha256: r, resumedBytes: 0, networkBytes: this.#networkBytes, restarts: this.#restarts, durationMs };
    } catch (err) {
      if (streamError !== undefined || (err as { code?: unknown }).code === 'EPIPE') throw localIoError(streamError ?? err, 'the output stream', undefined);
      throw err;
    } finally {
      stopTimers();
      stream.off('error', onError);
    }
  }

  #verifyDigest(actual: string | undefined, expected: { hex: string; source: 'option' | 'repr-digest' } | undefined): string | null {
    if (expected === undefined) return null;
    const ok = actual === expected.hex;
    this.#emit({ type: 'verify', algorithm: 'sha-256', source: expected.source, ok });
    if (!ok) {
      const from = expected.source === 'option' ? '--sha256' : "the server's Repr-Digest";
      throw new FerryError('FERRY_ERR_DOWNLOAD_CHECKSUM_MISMATCH', `sha-256 mismatch: expected ${expected.hex} (${from}), got ${actual ?? '(none)'}`);
    }
    return actual ?? null;
  }

  /** Verifies, makes durable if asked, renames into place, removes the state. */
  async #finish(fh: FileHandle, size: number, resumedBytes: number, expected: { hex: string; source: 'option' | 'repr-digest' } | undefined, digest: () => Promise<string | undefined>): Promise<DownloadResult> {
    const o = this.#o;
    const output = o.output as string;
    const partPath = this.#partPath!;
    let sha: string | null;
    try {
      sha = this.#verifyDigest(expected === undefined ? undefined : await digest(), expected);
    } catch (err) {
      if (isCode(err, 'FERRY_ERR_DOWNLOAD_CHECKSUM_MISMATCH')) {
        await rm(this.#statePath!, { force: true });
        if (!o.keepPartOnMismatch) await rm(partPath, { force: true });
        else throw new FerryError('FERRY_ERR_DOWNLOAD_CHECKSUM_MISMATCH', `${(err as Error).message}; the data is kept in ${partPath}`, { cause: err });
      }
      throw err;
    }
    try {
      if (o.fsync) await fh.datasync();
      await rename(partPath, output);
    } catch (err) {
      throw localIoError(err, output, this.#statePath);
    }
    if (this.#statePath !== undefined) await rm(this.#statePath, { force: true });
    const durationMs = Math.round(performance.now() - this.#startedAt);
    this.#emit({ type: 'done', output, sizeBytes: size, durationMs, networkBytes: this.#networkBytes, sha256: sha });
    return { output, sizeBytes: size, sha256: sha, resumedBytes, networkBytes: this.#networkBytes, restarts: this.#restarts, durationMs };
  }

  /** Progress events every progressIntervalMs and checkpoints every checkpointIntervalMs. */
  #startTimers(done: () => number, size: number | undefined, connections: () => number, onCheckpointTick: () => void): () => void {
    const meter = new SpeedMeter();
    const started = performance.now();
    const first = done();
    meter.sample(started, first);
    const progress = setInterval(() => {
      const now = performance.now();
      const d = done();
      const speed = meter.sample(now, d);
      this.#emit({
        type: 'progress', doneBytes: d, sizeBytes: size ?? null, speedBytesPerSec: Math.round(speed),
        etaMs: size !== undefined && speed > 0 ? Math.round(((size - d) / speed) * 1000) : null,
        connections: connections(), elapsedMs: Math.round(now - this.#startedAt),
      });
    }, this.#o.progressIntervalMs);
    const checkpoint = setInterval(onCheckpointTick, this.#o.checkpointIntervalMs);
    progress.unref();
    checkpoint.unref();
    return () => {
      clearInterval(progress);
      clearInterval(checkpoint);
    };
  }
}

/** A final or retryable status seen by the fast path (which does not read error bodies). */
class RemoteStatusErrorFromHead extends RemoteStatusError {
  constructor(status: number, url: URL, headers: IncomingHttpHeaders) {
    super(status, url, '', parseRetryAfter(headerValue(headers, 'retry-after'), Date.now()));
  }
}

interface SegmentContext {
  readonly fh: FileHandle;
  readonly p: ProbeResult;
  readonly size: number;
  readonly pieceBytes: number;
  readonly identity: RemoteIdentity;
  readonly signal: AbortSignal;
  readonly onWritten: (task: Task, writtenEnd: number, bytes: number, crc: number, completes: boolean) => void;
}

function contentLength(res: ClientResponse): number | undefined {
  const v = headerValue(res.headers, 'content-length');
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined;
}

/**
 * Checks a response to `Range: bytes=from-(to-1)`: it must be a single-part 206 whose
 * Content-Range is exactly what was asked, for the same representation. A 200 (the If-Range
 * validator failed, RFC 9110 §13.1.5) or a 416 (the file shrank) means the file changed.
 * Leaves other statuses to the caller.
 */
function checkPartialResponse(res: { readonly status: number; readonly headers: IncomingHttpHeaders }, from: number, to: number | undefined, started: RemoteIdentity, sentIfRange: boolean): void {
  if (res.status === 200) {
    throw changedError(sentIfRange
      ? 'the server sent the whole file instead of the requested range, so its validator no longer matches: the file changed'
      : 'the server stopped honouring ranges');
  }
  if (res.status === 416) throw changedError('the server says the requested range no longer exists: the file shrank');
  if (res.status !== 206) return;
  const raw = headerValue(res.headers, 'content-range');
  const cr = parseContentRange(raw);
  const seen: RemoteIdentity = {
    sizeBytes: cr?.completeLength,
    etag: headerValue(res.headers, 'etag'),
    lastModified: headerValue(res.headers, 'last-modified'),
  };
  const change = describeChange(started, seen);
  if (change !== undefined) throw changedError(`the file changed on the server (${change})`);
  if (/^multipart\//i.test(headerValue(res.headers, 'content-type') ?? '')) {
    throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', 'the server answered one range with multipart/byteranges');
  }
  const expectedLast = to === undefined ? undefined : to - 1;
  if (cr === undefined || cr.kind !== 'range' || cr.first !== from || (expectedLast !== undefined && cr.last !== expectedLast)
    || (started.sizeBytes !== undefined && cr.completeLength !== started.sizeBytes)) {
    throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `asked for bytes ${from}-${expectedLast ?? ''} but the 206 says Content-Range ${JSON.stringify(raw ?? null)}`);
  }
}

/** sha-256 of the first `size` bytes of an open file. */
async function hashFile(fh: FileHandle, size: number, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * MIB);
  let pos = 0;
  while (pos < size) {
    signal.throwIfAborted();
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest('hex');
}

/** Single-flight, atomic state writes: at most one in progress, the latest snapshot wins. */
function createCheckpointer(file: string, snapshot: () => ResumeState, onError: (err: unknown) => void): { request(): void; now(): Promise<void> } {
  let running: Promise<void> | undefined;
  let again = false;
  let lastError: string | undefined;
  const loop = async (): Promise<void> => {
    do {
      again = false;
      try {
        await writeResumeState(file, snapshot());
        lastError = undefined;
      } catch (err) {
        const msg = (err as Error).message;
        if (msg !== lastError) onError(err);
        lastError = msg;
      }
    } while (again);
  };
  const request = (): void => {
    if (running !== undefined) { again = true; return; }
    running = loop().finally(() => { running = undefined; });
  };
  return {
    request,
    async now() {
      while (running !== undefined) await running;
      request();
      await running;
    },
  };
}
